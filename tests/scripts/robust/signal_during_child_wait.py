# A root whose child outlives it: the child says it runs, waits until the root lets its
# pipe go (at the root's end, before vztrace waits for its children), sends it SIGTERM,
# and lives 5 s more.
import os
import subprocess
import sys

CHILD = """
import os, sys, time
os.write(int(sys.argv[2]), b"x")
os.read(int(sys.argv[1]), 1)
if os.getppid() == int(sys.argv[3]):
    os.kill(int(sys.argv[3]), 15)
time.sleep(5)
"""
read_end, write_end = os.pipe()
ready_read, ready_write = os.pipe()
subprocess.Popen(
    [sys.executable, "-c", CHILD, str(read_end), str(ready_write), str(os.getpid())],
    pass_fds=[read_end, ready_write],
)
os.close(read_end)
os.close(ready_write)
os.read(ready_read, 1)  # the child runs (and, under vztrace, is part of the tree)
print("done")
