# A signal that arrives just before a call starts, its handler raising: with
# --log-func-args, vztrace takes the repr of the call's argument in its start callback
# (3.12), and an int's repr runs the handlers of signals that have arrived. What the
# handler raises must reach the program as under python, and the handler run once.
import functools
import operator
import os
import signal
import sys
import threading
import traceback
import _thread

BIG = 10**30  # beyond 64 bits: its repr is CPython's, which looks for signals


def takes(value):
    return value


# One sender for both signals, started before either is blocked: the one thread that can
# take them (vztrace's own threads block every signal). With a sender of its own for each,
# the first could still be exiting when the second sent its signal (join() returns before
# the kernel's thread is gone): the kernel could choose it, and the signal then waited,
# pending, until the main thread unblocked it (1 run in 200 on a loaded machine).
go, sent = _thread.allocate_lock(), _thread.allocate_lock()
go.acquire()
sent.acquire()


def sender(signums):
    for signum in signums:
        go.acquire()
        os.kill(os.getpid(), signum)
        sent.release()


def delivered_at_start(signum, call):
    # Only C runs in the main thread between the signal's arrival (sent by the sender, as
    # the main thread blocks it) and the call's start.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signum})
    try:
        list(map(operator.call, [go.release, sent.acquire, call]))
        print("nothing was raised")
    except BaseException as error:
        names = [entry.name for entry in traceback.extract_tb(sys.exc_info()[2])]
        print(type(error).__name__, "raised in", names)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})


def on_alarm(signum, frame):
    raise TimeoutError("too slow")


handled = []


def on_interrupt(signum, frame):
    handled.append(signum)
    raise KeyboardInterrupt


thread = threading.Thread(target=sender, args=([signal.SIGUSR1, signal.SIGINT],))
thread.start()
signal.signal(signal.SIGUSR1, on_alarm)
delivered_at_start(signal.SIGUSR1, functools.partial(takes, BIG))
signal.signal(signal.SIGINT, on_interrupt)
delivered_at_start(signal.SIGINT, functools.partial(takes, BIG))
thread.join()
for _ in range(1000):  # a second KeyboardInterrupt would come at one of these checks
    pass
print("the SIGINT handler ran", len(handled), "time(s)")
