/* mandel: 1000x1000, at most 50 iterations, f64 (same algorithm as mandel.vvs) */
#include <stdio.h>

int main(void) {
    int n = 1000, iters = 50;
    double scale = 2.0 / n;
    long count = 0;
    for (int y = 0; y < n; y++) {
        double ci = y * scale - 1.0;
        for (int x = 0; x < n; x++) {
            double cr = x * scale - 1.5;
            double zr = 0.0, zi = 0.0;
            int i = 0;
            while (i < iters) {
                double zr2 = zr * zr, zi2 = zi * zi;
                if (zr2 + zi2 > 4.0)
                    break;
                zi = zi * zr;
                zi = zi + zi + ci;
                zr = zr2 - zi2 + cr;
                i += 1;
            }
            if (i == iters)
                count += 1;
        }
    }
    printf("%ld\n", count);
    return 0;
}
