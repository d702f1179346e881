# SIGTERM while the main thread is blocked in C code that no signal interrupts
# (pthread_join, through ctypes): Python's own handlers would never run, so a tracer that
# relied on them would wait forever. Dies of the signal (status 143), as under python.
import ctypes
import os
import signal
import threading

release = threading.Event()  # never set


def send():
    # Runs once the main thread has let go of the GIL, in pthread_join below.
    os.kill(os.getpid(), signal.SIGTERM)
    release.wait()


def blocked_wait(thread):
    libc = ctypes.CDLL(None)
    libc.pthread_join(ctypes.c_ulong(thread.ident), None)


print("waiting", flush=True)
sender = threading.Thread(target=send)
sender.start()
blocked_wait(sender)
print("not reached")
