# A terminating signal while the interpreter finalizes, in a root whose child is traced (its
# trace is written last, after finalizing), with a Python-level handler: the program's
# ("handler", SIGTERM) or CPython's KeyboardInterrupt ("interrupt", SIGINT). CPython has reset
# both to SIG_DFL by the time a __del__ runs at module teardown: python dies of the signal
# at once, printing nothing more (status 143 or 130).
import os
import signal
import sys


def marked():
    return 1


def on_term(signum, frame):
    print("handler ran")


if sys.argv[1] == "handler":
    signal.signal(signal.SIGTERM, on_term)
    chosen = signal.SIGTERM
else:
    chosen = signal.SIGINT

child = os.fork()
if child == 0:
    marked()
    os._exit(0)
os.waitpid(child, 0)


class Finalized:
    def __del__(self, _kill=os.kill, _pid=os.getpid(), _signal=chosen):
        _kill(_pid, _signal)
        print("after")


marked()
finalized = Finalized()
