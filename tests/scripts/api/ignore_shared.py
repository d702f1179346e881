# @vztrace.ignore and @vztrace.sparse on functions whose code other functions share: the
# wrappers one decorator makes, the closures of one def, a bound method.
import functools
import sys

import vztrace

mark = vztrace.sparse if "sparse" in sys.argv else vztrace.ignore


def logged(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return function(*args, **kwargs)

    return wrapper


@mark
@logged
def marked():
    return 1


@logged
def unmarked():
    return 2


def make(n):
    def closure():
        return n

    return closure


marked_closure, other_closure = make(1), make(2)
mark(marked_closure)


class Thing:
    def method(self):
        return 3


mark(Thing().method)  # a bound method: its function


@vztrace.sparse  # marked twice: the second mark keeps the first
@vztrace.ignore
def both():
    return 4


def main():
    total = marked() + unmarked() + unmarked()
    total += marked_closure() + other_closure() + other_closure() + Thing().method()
    return total + both()


print(main())
