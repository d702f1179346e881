# A heartbeat the program handles in Python and never disarms (a SIGALRM every 0.2 s, as
# progress reporters and watchdogs do; the first 1 s after the program's last line, once
# the interpreter has finalized), and a helper child that outlives the program (3 s). The
# program ends with 0; vztrace's root then waits for the child while the heartbeat goes on.
import os
import signal
import subprocess
import sys

CHILD = """
import os, sys, time
os.write(int(sys.argv[1]), b"x")
time.sleep(3)
"""
beats = []
signal.signal(signal.SIGALRM, lambda signum, frame: beats.append(signum))
ready_read, ready_write = os.pipe()
subprocess.Popen([sys.executable, "-c", CHILD, str(ready_write)], pass_fds=[ready_write])
os.close(ready_write)
os.read(ready_read, 1)  # the child runs (and, under vztrace, is part of the tree)
signal.setitimer(signal.ITIMER_REAL, 1, 0.2)
print("done")
