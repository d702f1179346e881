# The traced root process calls leaf() 300,000 times (several full chunks of records),
# waits until vztrace's writer has added a megabyte to its stream (beside the output,
# under a temporary name) since the loop began, then kills itself with SIGKILL.
import glob
import os
import signal
import sys
import time


def written():
    directory, name = os.path.split(sys.argv[1])
    pattern = os.path.join(directory, f".{name}.vztrace-{os.getpid()}.tmp")
    return sum(os.path.getsize(path) for path in glob.glob(pattern))


def leaf(i):
    return i


before = written()
for i in range(300_000):
    leaf(i)
deadline = time.monotonic() + 30
while written() - before < 1_000_000 and time.monotonic() < deadline:
    time.sleep(0.01)
os.kill(os.getpid(), signal.SIGKILL)
