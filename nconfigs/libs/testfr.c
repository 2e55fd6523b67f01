/* testfr.c - upstream's FFI example library (docs/upstream.md §9.3), for nconfigs/test.toml.
 *
 * One function with upstream's C ABI: VMValue f(const VMValue *args, uint32_t argc),
 * args[0..argc-1] = r1..r(argc). The tests build it as libs/libtestfr.so next to the
 * config with the system C compiler (tests/host/test_ffi.py); nothing binary is committed.
 */
#include <stdint.h>

#ifdef _WIN32
#define VV_EXPORT __declspec(dllexport)
#else
#define VV_EXPORT
#endif

typedef struct VMValue {
    uint32_t typeind;           /* the register's tag: 1 uint64, 2 int64, 3 float64, 4 StrAddr, 8 address, 9 ds_addr */
    uint64_t data;              /* the register's bits (a float64's IEEE bits) */
} VMValue;

/* r0 = U(r1 + r2), as upstream's libtestfr. */
VV_EXPORT VMValue unsigned_add(const VMValue *args, uint32_t argc) {
    VMValue result = {1, 0};
    if (argc >= 2) result.data = args[0].data + args[1].data;
    return result;
}
