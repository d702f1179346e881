# vztrace.pause() / resume() / paused() (api_test.cpp): f runs once, 12 times while
# paused, 3 times after resume(), 6 times inside paused(), then twice: 6 calls recorded.
import vztrace


def f():
    pass


def spanning():
    f()
    vztrace.pause()
    for _ in range(7):
        f()


def main():
    print("active", vztrace.active())
    spanning()
    print("paused active", vztrace.active())
    vztrace.instant("hidden")
    with vztrace.span("hidden span"):
        f()
    for _ in range(4):
        f()
    vztrace.resume()
    vztrace.instant("shown")
    for _ in range(3):
        f()
    with vztrace.paused():
        print("in paused()", vztrace.active())
        for _ in range(4):
            f()
        with vztrace.paused():
            f()
        f()
    print("after paused()", vztrace.active())
    for _ in range(2):
        f()


main()
