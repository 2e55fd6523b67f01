/* loop: s += i for i < 1e8 (same algorithm as loop.vvs) */
#include <inttypes.h>
#include <stdio.h>

int main(void) {
    /* n is read through a volatile so that gcc cannot compute the sum at compile
       time (at -O2 it folds the whole loop into the constant otherwise). */
    static volatile uint64_t limit = 100000000;
    uint64_t s = 0, i = 0, n = limit;
    while (i < n) {
        s += i;
        i += 1;
    }
    printf("%" PRIu64 "\n", s);
    return 0;
}
