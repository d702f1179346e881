# Instants, counters and spans of the program's own (api_test.cpp). Prints the same under
# vztrace and under plain python with the stand-in (embed/python) on PYTHONPATH.
import vztrace


class Unprintable:
    def __repr__(self):
        raise ValueError("no repr")


def inner():
    return 1


def outer():
    with vztrace.span("block", step=3, label="x") as block:
        inner()
    return block is not None


@vztrace.span("named", kind="decorator")
def decorated(n):
    return inner() + n


@vztrace.span
def bare():
    """Bare's doc."""
    return inner()


class Shape:
    @vztrace.span("Shape.area span")
    def area(self, side):
        return side * side


def failing():
    with vztrace.span("failing"):
        raise KeyError("k")


def main():
    vztrace.instant("start", count=5, text="hello", items=[1, 2], bad=Unprintable())
    vztrace.instant("long", text="é" * 600, items=list(range(400)))
    vztrace.instant("plain")
    vztrace.counter("queue", value=3)
    vztrace.counter("memory", rss=10.5, heap=2)
    vztrace.counter("queue", value=True)
    vztrace.counter("not a number", value=float("nan"))
    vztrace.counter("huge", value=10**400, negative=-(10**400))  # past a double: infinite
    print("outer", outer())
    print("decorated", decorated(1), decorated(2))
    print("bare", bare(), bare.__name__, bare.__doc__, bare.__wrapped__.__name__)
    print("area", Shape().area(4))
    try:
        failing()
    except KeyError as error:
        print("failing raised", repr(error))
    for bad in (lambda: vztrace.counter("c", value="3"), lambda: vztrace.counter("c"),
                lambda: vztrace.instant(3), lambda: vztrace.ignore(len),
                lambda: vztrace.span(3), lambda: vztrace.pause(1), lambda: vztrace.ignore(),
                lambda: vztrace.sparse(len, len), lambda: vztrace.ignore(function=len)):
        try:
            bad()
        except TypeError as error:
            print("TypeError:", error)


main()
