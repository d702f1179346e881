# The real-time signal vztrace relays SIGTERM through (SIGRTMAX - 1, the first free from the
# top) is the program's to use: it reads python's disposition of it, then sets it (argv[1]:
# "default" or "handler") and is sent SIGTERM while its main thread waits in C. Under python
# the process dies of SIGTERM, and a handler of its own on the real-time signal never runs.
import os
import signal
import sys
import threading


def marked():
    return 1


marked()
relay = signal.SIGRTMAX - 1
print("before:", signal.getsignal(relay), flush=True)
if sys.argv[1] == "default":
    print("returned:", signal.signal(relay, signal.SIG_DFL), flush=True)
    print("after:", signal.getsignal(relay), flush=True)
else:
    def handler(*args):
        print("the program's handler ran", flush=True)

    signal.signal(relay, handler)
    print("after:", signal.getsignal(relay) is handler, flush=True)
threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
if sys.argv[1] == "default":
    threading.Event().wait(60)  # in C, the GIL released
else:
    read_end, _ = os.pipe()
    os.read(read_end, 1)  # in C, until the signal interrupts it
print("not reached")
