/* sieve: Eratosthenes up to 1e7 over a byte array (same algorithm as sieve.vvs) */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    long n = 10000000;
    unsigned char *composite = calloc(n + 1, 1);   /* zero-filled: 0 = not crossed out */
    if (composite == NULL) {
        fputs("sieve: out of memory\n", stderr);
        return 1;
    }
    for (long i = 2; i * i <= n; i++)
        if (!composite[i])
            for (long j = i * i; j <= n; j += i)
                composite[j] = 1;
    long count = 0;
    for (long k = 2; k <= n; k++)
        if (!composite[k])
            count += 1;
    printf("%ld\n", count);
    free(composite);
    return 0;
}
