# Sends itself SIGTERM while inside a call; dies of it (status 143) as under python.
import os
import signal


def doomed():
    os.kill(os.getpid(), signal.SIGTERM)
    return "never"


def outer():
    return doomed()


print("before", flush=True)
outer()
print("not reached")
