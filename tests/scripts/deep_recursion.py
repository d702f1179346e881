# Recursion far deeper than a C call per frame allows (python's own frames take no C
# stack): the same answer under vztrace as under python, and every call recorded.
import sys

sys.setrecursionlimit(20000)


def down(n):
    return 0 if n == 0 else 1 + down(n - 1)


def up(n):
    for _ in range(n):
        yield n


print(down(12000), sum(up(3)))
