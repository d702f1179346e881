# A trace function of the program's (as a debugger or coverage.py installs), over a for loop
# on a generator: it sees exactly python's events, StopIteration included.
import sys

events = []


def numbers():
    yield 1
    yield 2


def loop():
    total = 0
    for n in numbers():
        total += n
    return total


def tracer(frame, event, arg):
    name = frame.f_code.co_name
    if name in ("numbers", "loop"):
        detail = arg[0].__name__ if event == "exception" else ""
        events.append(f"{event}:{name}:{detail}")
    return tracer


sys.settrace(tracer)
loop()
sys.settrace(None)
print(events)
