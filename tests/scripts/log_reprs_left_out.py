# The reprs vztrace would take for what the trace does not show run no code of the
# program's: the arguments of a call begun while paused and of an audit event then, and
# every argument, return value and exception once --max-size has stopped the recording.
# python runs none of these __repr__ and __str__: both print 0 twice. (A call that ends
# while paused may have begun before, and is then kept: its return value and exception
# are taken.)
import sys

try:
    import vztrace
except ImportError:  # under python
    vztrace = None

taken = 0


class Counted:
    def __repr__(self):
        global taken
        taken += 1
        return "Counted()"


class Failure(Exception):
    def __str__(self):
        global taken
        taken += 1
        return "failure"


def take(value):
    pass


def give():
    return Counted()


def fail(value):
    raise Failure()


def work():
    pass


def begun():
    take(Counted())
    sys.audit("vztrace.test", Counted())


if vztrace is not None:
    vztrace.pause()
begun()
if vztrace is not None:
    vztrace.resume()
print("while paused", taken)

taken = 0
if vztrace is not None:
    for _ in range(10_000_000):  # --max-size 1M is reached in about 300,000 calls
        if not vztrace.active():
            break
        work()
    print("stopped", not vztrace.active(), file=sys.stderr)
begun()
give()
try:
    fail(Counted())
except Failure:
    pass
print("once stopped", taken)
