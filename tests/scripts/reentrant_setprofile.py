# sys.setprofile called again while it installs a function: releasing the profile function
# it replaces runs that one's __del__, which installs another. Python refuses the inner
# call (a RuntimeError the unraisable hook sees) and keeps the outer call's function.
import sys


def outer(*args):
    pass


def inner(*args):
    pass


class Released:
    def __call__(self, *args):
        pass

    def __del__(self):
        sys.setprofile(inner)


def hook(unraisable):
    print("unraisable:", type(unraisable.exc_value).__name__, unraisable.exc_value)


sys.unraisablehook = hook
sys.setprofile(Released())
sys.setprofile(outer)
print("outer kept:", sys.getprofile() is outer, "inner taken:", sys.getprofile() is inner)
sys.setprofile(None)
