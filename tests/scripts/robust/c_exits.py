# Ends the process by _exit or exit from C, in the way argv[1] names, with status 3 (1 for
# faulthandler); the trace must keep the 100 calls of work() made before it.
#   faulthandler: faulthandler's watchdog thread calls _exit(1) while the main thread sleeps
#   ctypes-_exit, ctypes-exit: the main thread calls libc's, the GIL let go by ctypes
#   pydll-_exit, pydll-exit: the same with the GIL held (ctypes.PyDLL)
#   thread-_exit, thread-exit: a thread of C's own calls it while the main thread sleeps
#   busy-thread-exit: the same while the main thread runs Python, holding the GIL
import ctypes
import faulthandler
import sys
import time


def work(n):
    return n + 1


def spin():
    end = time.monotonic() + 30
    while time.monotonic() < end:
        work(0)


def from_c_thread(name):
    libc = ctypes.CDLL(None)
    start = ctypes.cast(getattr(libc, name), ctypes.c_void_p)
    thread = ctypes.c_ulong()
    libc.pthread_create.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                    ctypes.c_void_p]
    libc.pthread_create(ctypes.byref(thread), None, start, ctypes.c_void_p(3))


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
    print("not reached")


main(sys.argv[1])
