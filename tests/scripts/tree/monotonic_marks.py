# Each process reads CLOCK_MONOTONIC in the middle of a call to mark() and prints the
# reading: the root at once and again a second later, a thread of the root's (a packet
# sequence of its own), a forked child, a sys.executable child. The trace's time axis is
# that clock, in every process and thread.
import os
import subprocess
import sys
import threading
import time


def pause():
    for _ in range(5000):  # some microseconds on each side of the reading, and no call
        pass


def mark(tag):
    pause()
    reading = time.monotonic_ns()
    pause()
    print(tag, os.getpid(), reading, flush=True)


if sys.argv[1:] == ["spawned"]:
    mark("spawned")
    sys.exit(0)
mark("root")
pid = os.fork()
if pid == 0:
    mark("forked")
    os._exit(0)
os.waitpid(pid, 0)
subprocess.run([sys.executable, __file__, "spawned"], check=True)
thread = threading.Thread(target=mark, args=("thread",))
thread.start()
thread.join()
time.sleep(1)
mark("root-later")
