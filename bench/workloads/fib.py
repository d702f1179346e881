# Call-heavy recursion: one Python call per node of the fib tree.
from _scale import scaled


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


rounds = scaled(14)
print("fib", sum(fib(27) for _ in range(rounds)), "calls", rounds * 635621)
