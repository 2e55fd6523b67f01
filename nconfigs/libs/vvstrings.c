/* vvstrings.c - example FFI library: floats and heap strings, both ABIs (nconfigs/strings.toml).
 *
 * The first three functions use upstream's VMValue ABI (docs/upstream.md §9.3): they
 * see each register's tag and bits, floats as IEEE bits (docs/semantics.md §3.19).
 * The rest are plain C functions called through typed signatures (docs/ffi.md): the VM
 * converts the registers to the declared C types, and a `ptr` parameter receives a
 * pointer into a live heap block or main memory. Heap strings are UTF-16BE bytes, as
 * every voxvm string. Built by the tests into a temporary folder as libs/libvvstrings.so.
 */
#include <stdint.h>
#include <string.h>

#ifdef _WIN32
#define VV_EXPORT __declspec(dllexport)
#else
#define VV_EXPORT
#endif

typedef struct VMValue {
    uint32_t typeind;
    uint64_t data;
} VMValue;

enum { TAG_U64 = 1, TAG_I64 = 2, TAG_F64 = 3 };

static double number(VMValue v) {
    double d;
    if (v.typeind == TAG_F64) { memcpy(&d, &v.data, 8); return d; }
    if (v.typeind == TAG_I64) return (double)(int64_t)v.data;
    return (double)v.data;
}

/* r0 = F(r1 * r2 * ... ), each argument read by its tag. */
VV_EXPORT VMValue vv_fmul(const VMValue *args, uint32_t argc) {
    double product = 1.0;
    for (uint32_t i = 0; i < argc; i++) product *= number(args[i]);
    VMValue result = {TAG_F64, 0};
    memcpy(&result.data, &product, 8);
    return result;
}

/* r0 = U(the argument tags, one hex digit each, r1 lowest). */
VV_EXPORT VMValue vv_tags(const VMValue *args, uint32_t argc) {
    VMValue result = {TAG_U64, 0};
    for (uint32_t i = 0; i < argc && i < 16; i++) result.data |= (uint64_t)(args[i].typeind & 15u) << (4 * i);
    return result;
}

/* A result whose type is no register tag: the VM raises InvalidDataType. */
VV_EXPORT VMValue vv_bad_type(const VMValue *args, uint32_t argc) {
    (void)args; (void)argc;
    VMValue result = {5, 42};
    return result;
}

/* f64(f64,f64,f64): a + (b - a) * t. */
VV_EXPORT double vv_lerp(double a, double b, double t) { return a + (b - a) * t; }

/* f64(i64,f64,i64): integer and float parameters interleaved. */
VV_EXPORT double vv_scale_add(int64_t k, double x, int64_t c) { return (double)k * x + (double)c; }

/* i32(i32): a narrow result, sign-extended into an int64 register. */
VV_EXPORT int32_t vv_neg32(int32_t x) { return -x; }

/* u64(ptr,ptr,u64): copy n bytes of UTF-16BE text from src to dst with ASCII letters
 * upper-cased; returns the number of letters changed. */
VV_EXPORT uint64_t vv_utf16_upper(uint8_t *dst, const uint8_t *src, uint64_t n) {
    uint64_t changed = 0;
    for (uint64_t i = 0; i + 1 < n; i += 2) {
        uint8_t hi = src[i], lo = src[i + 1];
        if (hi == 0 && lo >= 'a' && lo <= 'z') { lo = (uint8_t)(lo - 32); changed++; }
        dst[i] = hi;
        dst[i + 1] = lo;
    }
    return changed;
}

/* u64(ptr,u64): the sum of n bytes. */
VV_EXPORT uint64_t vv_checksum(const uint8_t *p, uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) sum += p[i];
    return sum;
}

/* void(ptr,u64,u8): fill n bytes with one value; r0 is left alone. */
VV_EXPORT void vv_fill(uint8_t *p, uint64_t n, uint8_t value) { memset(p, value, (size_t)n); }

/* u64(u64,u64): the smallest typed call, for tools/bench_ffi.py. */
VV_EXPORT uint64_t vv_add(uint64_t a, uint64_t b) { return a + b; }
