/* vv_numtext.h - the text of a number as `print` (ncall 0x01) shows it.
 *
 * Owns the decimal text of the three numeric tags: uint64, int64 and float64.
 * The float64 text is Rust's `{}` for f64 (docs/semantics.md §10, docs/upstream.md §8.1):
 * the shortest digit string that reads back as the same double, never an
 * exponent (`1e21` prints 1000000000000000000000, `1e-7` prints 0.0000001),
 * `1.0` prints `1`, `-0.0` prints `-0`, and `NaN`, `inf`, `-inf`. Where two
 * shortest digit strings are equally near the exact binary value, the one
 * farther from zero wins (Rust's Dragon4 rounds that tie up; Python's repr
 * rounds it to even). voxvm/values.py `format_f64` is the Python twin, and
 * tests/test_native_table.py checks both against the conformance table of
 * 12,631 doubles.
 *
 * The digits come from the exact Dragon4 ("free format", Steele & White)
 * algorithm over small fixed-size bignums, written after Rust's
 * core::num::flt2dec (decoder + strategy::dragon::format_shortest) so that the
 * interval bounds (asymmetric at powers of two, inclusive for an even
 * mantissa) and the tie rule are the same. Exact arithmetic costs a few
 * hundred nanoseconds per double, well below one trip out of the loop, and
 * integral doubles below 2^53 take a short path.
 *
 * Pure functions over caller buffers; no state, no allocation (several VMs on
 * several threads call them at once).
 */
#ifndef VV_NUMTEXT_H
#define VV_NUMTEXT_H

#include <stdint.h>
#include <string.h>

/* Longest text: "-" + 0. + 323 zeros + 17 digits for the smallest subnormals;
 * 309 digits for the largest doubles. */
#define VV_NUMTEXT_MAX 352

/* uint64 in decimal; returns the length written (no terminator). */
static inline unsigned vv_text_u64(uint64_t v, char *out) {
    char tmp[20];
    unsigned n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    for (unsigned i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

/* int64 (given as its two's-complement bits) in decimal. */
static inline unsigned vv_text_i64(uint64_t bits, char *out) {
    if ((int64_t)bits >= 0) return vv_text_u64(bits, out);
    out[0] = '-';
    return 1 + vv_text_u64((uint64_t)0 - bits, out + 1);   /* INT64_MIN too */
}

/* ------------------------------------------------------------------------
 * Bignums: little-endian 32-bit limbs. The largest value Dragon4 meets for a
 * double is below 2^1090 (8 * scale with scale up to 2^1076 or 10^309). */

#define VV_BIG_LIMBS 40

typedef struct vv_big {
    unsigned n;                        /* limbs in use; value 0 has n == 0 */
    uint32_t d[VV_BIG_LIMBS];
} vv_big;

static inline void vv_big_set(vv_big *a, uint64_t v) {
    a->n = 0;
    while (v) { a->d[a->n++] = (uint32_t)v; v >>= 32; }
}

static inline void vv_big_mul_small(vv_big *a, uint32_t m) {
    uint64_t carry = 0;
    for (unsigned i = 0; i < a->n; i++) {
        uint64_t t = (uint64_t)a->d[i] * m + carry;
        a->d[i] = (uint32_t)t;
        carry = t >> 32;
    }
    if (carry) a->d[a->n++] = (uint32_t)carry;
}

static inline void vv_big_mul_pow2(vv_big *a, unsigned bits) {
    if (a->n == 0) return;
    unsigned limbs = bits / 32, shift = bits % 32;
    if (shift) {
        uint32_t carry = 0;
        for (unsigned i = 0; i < a->n; i++) {
            uint32_t v = a->d[i];
            a->d[i] = v << shift | carry;
            carry = v >> (32 - shift);
        }
        if (carry) a->d[a->n++] = carry;
    }
    if (limbs) {
        memmove(a->d + limbs, a->d, a->n * sizeof(uint32_t));
        memset(a->d, 0, limbs * sizeof(uint32_t));
        a->n += limbs;
    }
}

static inline void vv_big_mul_pow10(vv_big *a, unsigned k) {
    for (; k >= 9; k -= 9) vv_big_mul_small(a, 1000000000u);
    static const uint32_t small[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};
    if (k) vv_big_mul_small(a, small[k]);
}

static inline int vv_big_cmp(const vv_big *a, const vv_big *b) {
    if (a->n != b->n) return a->n < b->n ? -1 : 1;
    for (unsigned i = a->n; i-- > 0;)
        if (a->d[i] != b->d[i]) return a->d[i] < b->d[i] ? -1 : 1;
    return 0;
}

/* out = a + b (out may be a). */
static inline void vv_big_add(vv_big *out, const vv_big *a, const vv_big *b) {
    const vv_big *lo = a->n < b->n ? a : b, *hi = a->n < b->n ? b : a;
    uint64_t carry = 0;
    unsigned i = 0, n = hi->n;
    for (; i < lo->n; i++) {
        uint64_t t = (uint64_t)hi->d[i] + lo->d[i] + carry;
        out->d[i] = (uint32_t)t; carry = t >> 32;
    }
    for (; i < n; i++) {
        uint64_t t = (uint64_t)hi->d[i] + carry;
        out->d[i] = (uint32_t)t; carry = t >> 32;
    }
    out->n = n;
    if (carry) out->d[out->n++] = (uint32_t)carry;
}

/* a -= b, where a >= b. */
static inline void vv_big_sub(vv_big *a, const vv_big *b) {
    int64_t borrow = 0;
    for (unsigned i = 0; i < a->n; i++) {
        int64_t t = (int64_t)a->d[i] - (i < b->n ? (int64_t)b->d[i] : 0) - borrow;
        borrow = t < 0;
        a->d[i] = (uint32_t)(t + (borrow << 32));
    }
    while (a->n && a->d[a->n - 1] == 0) a->n--;
}

/* ------------------------------------------------------------------------
 * Dragon4, shortest mode */

/* Digits of the finite, non-zero |x| with bits `bits`: writes them to `digits`
 * (at most 17) and returns their count; *point is the decimal exponent k with
 * |x| ~= 0.d1d2... * 10^k. */
static unsigned vv_dragon_shortest(uint64_t bits, char *digits, int *point) {
    unsigned biased = (unsigned)(bits >> 52 & 0x7FF);
    uint64_t frac = bits & ((UINT64_C(1) << 52) - 1);
    uint64_t mant, minus = 1, plus = 1;
    int exp, inclusive;
    /* The decoder of Rust's flt2dec: v = mant * 2^exp, the interval of
     * values that read back as x is [(mant - minus) 2^exp, (mant + plus) 2^exp],
     * its bounds included when the integer mantissa is even. */
    if (biased == 0) {                         /* subnormal: mantissa frac << 1, always even */
        mant = frac << 1; exp = -1075; inclusive = 1;
    } else {
        uint64_t m = frac | UINT64_C(1) << 52;
        inclusive = (m & 1) == 0;
        if (frac == 0) {                       /* a power of two: the gap below is half the gap above */
            mant = m << 2; plus = 2; exp = (int)biased - 1075 - 2;
        } else {
            mant = m << 1; exp = (int)biased - 1075 - 1;
        }
    }
    /* k with 10^(k-1) < high <= 10^(k+1): floor((nbits + exp) * log10(2)), never above. */
    uint64_t high = mant + plus - 1;
    int nbits = 0;
    while (nbits < 64 && high >> nbits) nbits++;
    int k = (int)(((int64_t)(nbits + exp) * INT64_C(1292913986)) >> 32);

    vv_big r, lo, hi, scale, tmp;
    vv_big_set(&r, mant); vv_big_set(&lo, minus); vv_big_set(&hi, plus); vv_big_set(&scale, 1);
    if (exp < 0) {
        vv_big_mul_pow2(&scale, (unsigned)-exp);
    } else {
        vv_big_mul_pow2(&r, (unsigned)exp); vv_big_mul_pow2(&lo, (unsigned)exp); vv_big_mul_pow2(&hi, (unsigned)exp);
    }
    if (k >= 0) {
        vv_big_mul_pow10(&scale, (unsigned)k);
    } else {
        vv_big_mul_pow10(&r, (unsigned)-k); vv_big_mul_pow10(&lo, (unsigned)-k); vv_big_mul_pow10(&hi, (unsigned)-k);
    }
    /* `a < b` as Rust's `a.cmp(b) < rounding`: `<=` when the bounds are included. */
#define VV_BELOW(a, b) (inclusive ? vv_big_cmp((a), (b)) <= 0 : vv_big_cmp((a), (b)) < 0)
    vv_big_add(&tmp, &r, &hi);
    if (VV_BELOW(&scale, &tmp)) {
        k += 1;                                /* the estimate was one low */
    } else {
        vv_big_mul_small(&r, 10); vv_big_mul_small(&lo, 10); vv_big_mul_small(&hi, 10);
    }
    vv_big s2 = scale, s4 = scale, s8 = scale;
    vv_big_mul_pow2(&s2, 1); vv_big_mul_pow2(&s4, 2); vv_big_mul_pow2(&s8, 3);

    unsigned n = 0;
    int down, up;
    for (;;) {
        unsigned d = 0;                        /* r < 10 * scale: one digit by binary long division */
        if (vv_big_cmp(&r, &s8) >= 0) { vv_big_sub(&r, &s8); d += 8; }
        if (vv_big_cmp(&r, &s4) >= 0) { vv_big_sub(&r, &s4); d += 4; }
        if (vv_big_cmp(&r, &s2) >= 0) { vv_big_sub(&r, &s2); d += 2; }
        if (vv_big_cmp(&r, &scale) >= 0) { vv_big_sub(&r, &scale); d += 1; }
        digits[n++] = (char)('0' + d);
        down = VV_BELOW(&r, &lo);              /* these digits already read back as x ... */
        vv_big_add(&tmp, &r, &hi);
        up = VV_BELOW(&scale, &tmp);           /* ... or the next digit up does */
        if (down || up || n >= 17) break;
        vv_big_mul_small(&r, 10); vv_big_mul_small(&lo, 10); vv_big_mul_small(&hi, 10);
    }
#undef VV_BELOW
    /* Round up when only the rounded-up digits read back, and on a tie
     * (2r == scale): Rust rounds the exact midpoint up, away from zero. */
    if (up) {
        vv_big_mul_pow2(&r, 1);
        if (!down || vv_big_cmp(&r, &scale) >= 0) {
            unsigned i = n;
            while (i > 0 && digits[i - 1] == '9') digits[--i] = '0';
            if (i == 0) {                      /* 99..9 -> 100..0: one more power of ten */
                digits[0] = '1';
                for (unsigned j = 1; j < n; j++) digits[j] = '0';
                k += 1;
            } else {
                digits[i - 1]++;
            }
        }
    }
    *point = k;
    return n;
}

/* float64 (given as its bits) as Rust's `{}` prints it; returns the length. */
static unsigned vv_text_f64(uint64_t bits, char *out) {
    unsigned len = 0;
    unsigned biased = (unsigned)(bits >> 52 & 0x7FF);
    uint64_t frac = bits & ((UINT64_C(1) << 52) - 1);
    if (biased == 0x7FF) {
        if (frac) { memcpy(out, "NaN", 3); return 3; }
        if (bits >> 63) { memcpy(out, "-inf", 4); return 4; }
        memcpy(out, "inf", 3); return 3;
    }
    if (bits >> 63) out[len++] = '-';
    if (biased == 0 && frac == 0) { out[len++] = '0'; return len; }
    /* Integral values below 2^53: their digits are the integer's (after the
     * trailing zeros are dropped, the shortest form of an integer is itself). */
    if (biased >= 1023 && biased < 1023 + 53) {
        unsigned shift = 1075 - biased;        /* fraction bits below the binary point */
        uint64_t m = frac | UINT64_C(1) << 52;
        if ((m & ((UINT64_C(1) << shift) - 1)) == 0) return len + vv_text_u64(m >> shift, out + len);
    }
    char digits[20];
    int point;
    unsigned n = vv_dragon_shortest(bits, digits, &point);
    while (n > 1 && digits[n - 1] == '0') n--;  /* a rounded-up 0.1999.. may leave zeros */
    if (point <= 0) {                          /* 0.000ddd */
        out[len++] = '0'; out[len++] = '.';
        for (int i = 0; i < -point; i++) out[len++] = '0';
        memcpy(out + len, digits, n); len += n;
    } else if ((unsigned)point >= n) {         /* ddd000 */
        memcpy(out + len, digits, n); len += n;
        for (unsigned i = n; i < (unsigned)point; i++) out[len++] = '0';
    } else {                                   /* dd.ddd */
        memcpy(out + len, digits, (size_t)point); len += (unsigned)point;
        out[len++] = '.';
        memcpy(out + len, digits + point, n - (size_t)point); len += n - (unsigned)point;
    }
    return len;
}

#endif /* VV_NUMTEXT_H */
