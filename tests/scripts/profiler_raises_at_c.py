# The program's profile function raises at a C call's event (argv[1]: c_call, c_return or
# c_exception); python removes it, and the exception goes on from the call.
import sys

event = sys.argv[1]


def work():
    return len(5) if event == "c_exception" else len([1, 2])


def profile(frame, what, arg):
    if what == event and arg is len:
        raise RuntimeError("the profile function fails")


def after():
    return 3


def run():
    sys.setprofile(profile)
    try:
        work()
    except RuntimeError:
        print("caught", sys.getprofile())
    after()


run()
