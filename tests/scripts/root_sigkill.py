# The traced root process calls leaf() 50,000 times, waits until vztrace's writer has
# written a good part of that to its stream (beside the output, under a temporary name),
# then kills itself with SIGKILL.
import glob
import os
import signal
import sys
import time


def leaf(i):
    return i


for i in range(50_000):
    leaf(i)
directory, name = os.path.split(sys.argv[1])
pattern = os.path.join(directory, f".{name}.vztrace-{os.getpid()}.tmp")
deadline = time.monotonic() + 30
while sum(os.path.getsize(p) for p in glob.glob(pattern)) < 200_000 and time.monotonic() < deadline:
    time.sleep(0.01)
os.kill(os.getpid(), signal.SIGKILL)
