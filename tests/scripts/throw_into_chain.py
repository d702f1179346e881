# An exception thrown into a `yield from` chain, which the innermost generator catches
# before it returns: each generator waiting in the chain resumes and goes on.
def helper(x):
    return x


def chain(n):
    if n == 0:
        try:
            yield 0
        except KeyError:
            helper("caught")
        return "r"
    r = yield from chain(n - 1)
    helper("resumed")
    return r


def drive(other):
    try:
        other.throw(KeyError)
    except StopIteration:
        pass
    helper("after")
    yield "driven"


def main():
    waiting = chain(2)
    next(waiting)
    next(drive(waiting))


main()
