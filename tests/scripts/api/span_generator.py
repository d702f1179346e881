# A span opened in a generator's frame, ended by the generator's yield, whose own end comes
# at a later resume, inside a span of the same name.
import vztrace


def rows():
    with vztrace.span("fetch"):
        yield 1
        yield 2


def work():
    pass


def main():
    with vztrace.span("fetch"):
        for _ in rows():
            work()
        work()
        work()
    work()


main()
