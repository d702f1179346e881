# A signal handler that is an object with a property named func (and a __getattr__): when
# a repr raises, vztrace looks at the handlers to tell a signal's exception from the repr's
# own, and must run none of the program's code doing so (python never calls these here).
import signal


class Handler:
    @property
    def func(self):
        print("func read")
        return None

    def __getattr__(self, name):
        print("getattr", name)
        raise AttributeError(name)

    def __call__(self, signum, frame):
        pass


class Unprintable:
    def __repr__(self):
        raise ValueError("no repr")


def takes(value):
    return 1


signal.signal(signal.SIGUSR1, Handler())
print(takes(Unprintable()))
