# One long call around many short ones: a ring smaller than the run keeps only the newest.
# With an argument, outer() never returns: the process ends inside it (os._exit, or
# SIGTERM), so outer() and <module> are open for the whole of what the ring keeps.
import os
import signal
import sys


def leaf(i):
    return i


def outer():
    for i in range(300_000):
        leaf(i)
    if len(sys.argv) > 1:
        print("done", flush=True)
        if sys.argv[1] == "os._exit":
            os._exit(0)
        os.kill(os.getpid(), signal.SIGTERM)


outer()
print("done")
