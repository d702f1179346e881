# A thread renamed while it runs, alive when the process ends by os._exit or SIGTERM.
import os
import signal
import sys
import threading
import time

started = threading.Event()


def spin():
    started.set()
    while True:
        time.sleep(0.01)


thread = threading.Thread(target=spin, name="orig", daemon=True)
thread.start()
started.wait()
thread.name = "renamed"
print("renamed", flush=True)
if sys.argv[1] == "exit":
    os._exit(3)
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(60)  # the signal ends the process before this does
