# @vztrace.sparse (api_test.cpp): under --log-sparse only `kept` (3 calls) and the span.
import vztrace


def plain():
    pass


@vztrace.sparse
def kept():
    plain()


def main():
    for _ in range(3):
        kept()
    plain()
    with vztrace.span("region"):
        plain()
    vztrace.instant("mark")


main()
