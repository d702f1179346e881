# A root whose child outlives it and signals it once the root has let the child's pipe go
# (at the root's end, once Python is done: before vztrace waits for its children). The
# child first says it runs, so that it is part of the tree.
#   heartbeat: SIGALRM, which the program handles in Python (a supervisor's pings), every
#              0.2 s for 2 s; the program ends with 0
#   sigterm:   SIGTERM once, then the child lives 5 s more
import os
import signal
import subprocess
import sys

CHILD = """
import os, sys, time
read_end, ready, root, signum, times, pause = map(float, sys.argv[1:])
os.write(int(ready), b"x")
os.read(int(read_end), 1)
for _ in range(int(times)):
    if os.getppid() == int(root):
        os.kill(int(root), int(signum))
    time.sleep(pause)
"""
if sys.argv[1] == "heartbeat":
    beats = []
    signal.signal(signal.SIGALRM, lambda signum, frame: beats.append(signum))
    how = [signal.SIGALRM, 10, 0.2]
else:
    how = [signal.SIGTERM, 1, 5]
read_end, write_end = os.pipe()
ready_read, ready_write = os.pipe()
subprocess.Popen(
    [sys.executable, "-c", CHILD, str(read_end), str(ready_write), str(os.getpid())]
    + [str(int(how[0])), str(how[1]), str(how[2])],
    pass_fds=[read_end, ready_write],
)
os.close(read_end)
os.close(ready_write)
os.read(ready_read, 1)  # the child runs (and, under vztrace, is part of the tree)
print("done")
