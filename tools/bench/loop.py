"""loop: s += i for i < 1e8 (same algorithm as loop.vvs)."""


def main():
    s, i, n = 0, 0, 100000000
    while i < n:
        s += i
        i += 1
    print(s)


main()
