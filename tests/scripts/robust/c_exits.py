# Ends the process by _exit or exit from C, in the way argv[1] names, with status 3 (1 for
# faulthandler); the trace must keep the 100 calls of work() made before it.
#   faulthandler: faulthandler's watchdog thread calls _exit(1) while the main thread sleeps
#   ctypes-_exit, ctypes-exit: the main thread calls libc's, the GIL let go by ctypes
#   pydll-_exit, pydll-exit: the same with the GIL held (ctypes.PyDLL)
#   thread-_exit, thread-exit: a thread of C's own calls it while the main thread sleeps
#   busy-thread-exit: the same while the main thread runs Python, holding the GIL
#   finalizer-exit: a __del__ run as the interpreter finalizes calls exit (the GIL held)
#   exit-while-writing: the main thread calls exit(3) after 300,000 calls of bulk(); a timer
#                       thread of C's calls exit(4) 50 ms after it is armed, just before,
#                       while the trace is written
#   term-while-waiting: a timer thread of C's calls exit(3) while the main thread holds the
#                       GIL in C (pause); a child process then sends the root SIGTERM
#   gil-held: the same without the SIGTERM: the exit waits 5 s for the GIL, then gives up
import ctypes
import faulthandler
import os
import signal
import sys
import time

libc = ctypes.CDLL(None)


def work(n):
    return n + 1


def bulk(n):
    return n


def spin():
    end = time.monotonic() + 30
    while time.monotonic() < end:
        work(0)


def from_c_thread(name):
    start = ctypes.cast(getattr(libc, name), ctypes.c_void_p)
    thread = ctypes.c_ulong()
    libc.pthread_create.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                    ctypes.c_void_p]
    libc.pthread_create(ctypes.byref(thread), None, start, ctypes.c_void_p(3))


class SigEvent(ctypes.Structure):
    _fields_ = [("value", ctypes.c_void_p), ("signo", ctypes.c_int), ("notify", ctypes.c_int),
                ("function", ctypes.c_void_p), ("attributes", ctypes.c_void_p),
                ("pad", ctypes.c_char * 32)]


class TimerSpec(ctypes.Structure):
    _fields_ = [("interval_s", ctypes.c_long), ("interval_ns", ctypes.c_long),
                ("value_s", ctypes.c_long), ("value_ns", ctypes.c_long)]


def exit_timer(status, seconds):
    """A POSIX timer whose new C thread (SIGEV_THREAD) calls libc's exit(status), and the
    function (no argument) that arms it."""
    event = SigEvent(value=status, notify=2, function=ctypes.cast(libc.exit, ctypes.c_void_p))
    timer = ctypes.c_void_p()
    if libc.timer_create(1, ctypes.byref(event), ctypes.byref(timer)) != 0:  # MONOTONIC
        raise OSError("timer_create failed")
    spec = TimerSpec(0, 0, int(seconds), int(seconds % 1 * 1e9))
    exit_timer.kept = (event, timer, spec)

    def arm():
        if libc.timer_settime(timer, 0, ctypes.byref(spec), None) != 0:
            raise OSError("timer_settime failed")
    return arm


def exit_later(status, seconds):
    exit_timer(status, seconds)()


class ExitsWhenCollected:
    def __del__(self):
        ctypes.PyDLL(None).exit(3)


def main(mode):
    for i in range(100):
        work(i)
    print("start", mode, flush=True)
    if mode == "faulthandler":
        faulthandler.dump_traceback_later(0.2, exit=True)
        time.sleep(30)
    elif mode.startswith("ctypes-"):
        getattr(ctypes.CDLL(None), mode[len("ctypes-"):])(3)
    elif mode.startswith("pydll-"):
        getattr(ctypes.PyDLL(None), mode[len("pydll-"):])(3)
    elif mode.startswith("thread-"):
        from_c_thread(mode[len("thread-"):])
        time.sleep(30)
    elif mode == "busy-thread-exit":
        from_c_thread("exit")
        spin()
    elif mode == "finalizer-exit":
        main.kept = ExitsWhenCollected()
        return
    elif mode == "exit-while-writing":
        # All made beforehand: the exit(3) must come well before the timer's. The more
        # Python ran between arming and exiting, the likelier a stall of the host's put the
        # second exit first (once in CI, under ASan): vztrace then exits with 4, as python
        # would have in the same stall.
        arm = exit_timer(4, 0.05)
        exit_3 = ctypes.PyDLL(None).exit
        for i in range(300_000):
            bulk(i)
        arm()
        exit_3(3)
    elif mode in ("term-while-waiting", "gil-held"):
        root = os.getpid()
        if mode == "term-while-waiting" and os.fork() == 0:
            time.sleep(1)  # python's root has exited at 0.2 s; vztrace's waits up to 5 s
            try:
                os.kill(root, signal.SIGTERM)
            except ProcessLookupError:
                pass
            os._exit(0)
        exit_later(3, 0.2)
        ctypes.PyDLL(None).pause()
    print("not reached")


main(sys.argv[1])
