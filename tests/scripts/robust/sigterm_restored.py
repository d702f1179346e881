# Saves SIGTERM's handler and restores it (SIG_DFL, as python reports it), then is sent
# SIGTERM: dies of it (143), as under python.
import os
import signal


def marked():
    return 1


marked()
old = signal.signal(signal.SIGTERM, lambda *a: None)
signal.signal(signal.SIGTERM, old)
print("restored", old, flush=True)
os.kill(os.getpid(), signal.SIGTERM)
print("not reached")
