# A heartbeat the program handles in Python and never disarms (a SIGALRM every 0.2 s from
# 0.5 s on, as progress reporters and watchdogs do), and a helper child that outlives the
# program (1.5 s). The program ends with 0 at once; vztrace's root then waits for the child
# while the heartbeat goes on.
import signal
import subprocess
import sys

beats = []
signal.signal(signal.SIGALRM, lambda signum, frame: beats.append(signum))
signal.setitimer(signal.ITIMER_REAL, 0.5, 0.2)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
print("done")
