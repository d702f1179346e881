# Calls left by an exception at their very first instruction, before CPython has told a
# profiler they started: each frame ran (a traceback names it), so each is a call.
import functools
import operator
import os
import signal
import sys
import threading
import traceback
import _thread


def leaf(i):
    return i


def work(k):
    for i in range(k):
        leaf(i)


class Quit(Exception):
    pass


def frames():
    return [entry.name for entry in traceback.extract_tb(sys.exc_info()[2])]


def traced_then_quit(setter, event):
    started = 0

    def function(frame, what, arg):
        nonlocal started
        if what == event and frame.f_code.co_name == "leaf":
            started += 1
            if started == 2:
                raise Quit  # as bdb raises BdbQuit at a 'call'
        return function

    setter(function)
    try:
        work(3)
    except Quit:
        print(setter.__name__, "raised in", frames())
    setter(None)
    print(setter.__name__, "saw leaf start", started, "times")


def on_signal(signum, frame):
    print("handler ran in", frame.f_code.co_name)
    raise KeyboardInterrupt


def signalled_at_start():
    # Only C runs in the main thread between the signal's arrival (sent by another
    # thread, as the main thread blocks it) and leaf's start: map calls from C, so the
    # handler runs at leaf's first instruction, the first place the signal is looked at.
    signal.signal(signal.SIGUSR1, on_signal)
    go, sent = _thread.allocate_lock(), _thread.allocate_lock()
    go.acquire()
    sent.acquire()

    def sender():
        go.acquire()
        os.kill(os.getpid(), signal.SIGUSR1)
        sent.release()

    thread = threading.Thread(target=sender)
    thread.start()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    steps = [go.release, sent.acquire, functools.partial(leaf, 7)]
    try:
        list(map(operator.call, steps))
    except KeyboardInterrupt:
        print("interrupted in", frames())
    thread.join()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})


traced_then_quit(sys.settrace, "call")
traced_then_quit(sys.setprofile, "call")
signalled_at_start()
work(2)
