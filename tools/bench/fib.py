"""fib: naive doubly recursive fib(32) (same algorithm as fib.vvs)."""


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


print(fib(32))
