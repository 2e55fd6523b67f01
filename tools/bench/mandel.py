"""mandel: 1000x1000, at most 50 iterations, f64 (same algorithm as mandel.vvs)."""


def main():
    n, iters = 1000, 50
    scale = 2.0 / n
    count = 0
    for y in range(n):
        ci = y * scale - 1.0
        for x in range(n):
            cr = x * scale - 1.5
            zr = zi = 0.0
            i = 0
            while i < iters:
                zr2 = zr * zr
                zi2 = zi * zi
                if zr2 + zi2 > 4.0:
                    break
                zi = zi * zr
                zi = zi + zi + ci
                zr = zr2 - zi2 + cr
                i += 1
            if i == iters:
                count += 1
    print(count)


main()
