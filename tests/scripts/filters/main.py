# A deterministic program for the recording controls' tests: functions here and in lib/,
# a call back from lib into this file, a generator thrown into, a long call with short
# ones inside, and a child process running the same program with --child.
import subprocess
import sys
import time

from lib import helper


def leaf(n):
    return n + 1


def mid(n):
    return leaf(n) + leaf(n)


def callback(n):
    return leaf(n)


def thrown():
    try:
        yield 1
    except ValueError:
        yield 2


def busy(seconds):
    # Busy for `seconds` of wall time (the --min-duration test needs long calls; no sleep,
    # whose resolution depends on the machine).
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        pass


def long_call():
    for i in range(5):
        mid(i)
    busy(0.02)


def top():
    for i in range(3):
        mid(i)
    helper.work(callback, 4)
    generator = thrown()
    next(generator)
    print("thrown:", generator.throw(ValueError()))
    long_call()


top()
if "--child" not in sys.argv:
    result = subprocess.run([sys.executable, __file__, "--child"], capture_output=True,
                            text=True, check=True)
    print("child said:", result.stdout.strip().splitlines()[-1])
print("done")
