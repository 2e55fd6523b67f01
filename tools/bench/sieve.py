"""sieve: Eratosthenes up to 1e7 over a byte array (same algorithm as sieve.vvs)."""


def main():
    n = 10000000
    composite = bytearray(n + 1)
    i = 2
    while i * i <= n:
        if not composite[i]:
            for j in range(i * i, n + 1, i):
                composite[j] = 1
        i += 1
    count = 0
    for k in range(2, n + 1):
        if not composite[k]:
            count += 1
    print(count)


main()
