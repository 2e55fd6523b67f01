"""alloc: 5e6 two-field objects [value, next] kept alive for 1024 iterations in a ring (same algorithm as alloc.vvs)."""


def main():
    n, ring_size = 5000000, 1024
    ring = [None] * ring_size
    prev = [-1, None]
    checksum = 0
    slot = 0
    for i in range(n):
        obj = [i, None]
        prev[1] = obj
        prev = obj
        old = ring[slot]
        if old is not None:
            checksum += old[1][0]
        ring[slot] = obj
        slot += 1
        if slot == ring_size:
            slot = 0
    print(checksum)


main()
