# vztrace.ignore and vztrace.sparse given while the program runs (api_test.cpp): only the
# calls begun after the marking change, however many calls come between (argv[1]: the
# calls of filler between, enough to fill several record chunks or none). And a class's
# properties and cached properties are among the functions of its body.
import functools
import sys

import vztrace


def leaf(x):
    return x


def filler():
    pass


def late_ignored(x):
    return leaf(x)


def late_sparse(x):
    return leaf(x)


@vztrace.ignore
class Shape:
    def __init__(self):
        self._side = 2

    @property
    def side(self):
        return leaf(self._side)

    @side.setter
    def side(self, value):
        self._side = leaf(value)

    @functools.cached_property
    def area(self):
        return leaf(self._side) ** 2


class Plain:
    @property
    def half(self):
        return leaf(1) / 2


late_ignored(1)
late_sparse(1)
for _ in range(int(sys.argv[1])):
    filler()
vztrace.ignore(late_ignored)
vztrace.sparse(late_sparse)
late_ignored(2)
late_sparse(2)
shape = Shape()
shape.side = 3
print(shape.side, shape.area)
vztrace.ignore(Plain.__dict__["half"])
print(Plain().half)
