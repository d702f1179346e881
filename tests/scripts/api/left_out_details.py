# Calls left out (@vztrace.ignore, a pause, --max-stack-depth 3) whose ends carry an
# exception or a return value (--log-exception, --log-func-retval). Each is followed by a
# call whose end carries nothing of its own: a C call, or a generator's yield.
import vztrace


@vztrace.ignore
def ignored_raises():
    raise KeyError("LEFT-OUT ignored raise")


@vztrace.ignore
def ignored_returns():
    return "LEFT-OUT ignored return"


def paused_returns():
    return "LEFT-OUT paused return"


def too_deep():
    return "LEFT-OUT too deep"


def at_the_limit():  # depth 3: what it calls is left out
    too_deep()
    yield 1


def main():
    try:
        ignored_raises()
    except KeyError:
        pass
    len("after an ignored raise")
    ignored_returns()
    len("after an ignored return")
    with vztrace.paused():
        paused_returns()
    len("after a pause")
    for _ in at_the_limit():
        pass


main()
