# Dies of the signal named in argv[1] at its default action while inside a call, as under
# python. SIGINT and SIGPIPE are set back to SIG_DFL first (python makes the first
# KeyboardInterrupt and ignores the second). SIGALRM comes from alarm(), "SIGPIPE-write"
# from a write to a pipe nobody reads; the others the process sends itself.
import os
import signal
import sys
import time

how = sys.argv[1]
signum = getattr(signal, how.split("-")[0])


def doomed():
    if signum == signal.SIGALRM:
        signal.alarm(1)
    elif how == "SIGPIPE-write":
        read_end, write_end = os.pipe()
        os.close(read_end)
        os.write(write_end, b"x")
    else:
        os.kill(os.getpid(), signum)
    while True:  # an asynchronous signal may arrive a little later
        time.sleep(0.05)


def outer():
    return doomed()


if signum in (signal.SIGINT, signal.SIGPIPE):
    signal.signal(signum, signal.SIG_DFL)
print("before", signal.getsignal(signum) == signal.SIG_DFL, flush=True)
outer()
print("not reached")
