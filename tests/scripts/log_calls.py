# --log-func-args, --log-func-retval, --log-exception: calls with known arguments, a repr
# that raises, a long repr, a call that raises, a generator.
import sys


class BadRepr:
    def __repr__(self):
        raise ValueError("no repr")


class Long:
    def __repr__(self):
        return "x" * 2000


def add(a, b, *rest, scale=1, **options):
    return (a + b) * scale


def takes(obj):
    return "ok"


def fails(n):
    raise KeyError(f"missing {n}")


def numbers(start):
    yield start
    yield start + 1
    return "done"


print(add(1, 2, 3, scale=2, flag=True))
print(takes(BadRepr()))
print(takes(Long()))
try:
    fails(7)
except KeyError:
    print("caught", sys.exc_info()[0].__name__)
print(list(numbers(10)))
