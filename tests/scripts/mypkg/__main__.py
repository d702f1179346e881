import sys

from mypkg import VALUE


def double(x):
    return x * 2


print("mypkg main", __name__, sys.argv, double(VALUE))
