# A signal the program handles in Python (SIGALRM, a heartbeat), sent by a helper child
# that outlives the program, as a supervisor's pings: the child starts sending once the
# root lets its pipe go (at the root's end, once Python is done), then lives 2 s more.
# The program ends with 0.
import os
import signal
import subprocess
import sys

CHILD = """
import os, sys, time
os.write(int(sys.argv[2]), b"x")
os.read(int(sys.argv[1]), 1)
for _ in range(10):
    if os.getppid() == int(sys.argv[3]):
        os.kill(int(sys.argv[3]), 14)
    time.sleep(0.2)
"""
beats = []
signal.signal(signal.SIGALRM, lambda signum, frame: beats.append(signum))
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
