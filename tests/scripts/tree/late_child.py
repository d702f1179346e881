# Starts a child (sys.executable) as the root ends: the child's tracing begins after the
# root's last look at the parts, or just before it. It prints its pid at its end, on the
# stderr it shares with the root (the test reads both until the child has gone).
import subprocess
import sys

CHILD = """
import os, sys, time
def late_work():
    time.sleep(0.3)
late_work()
print("child", os.getpid(), "done", file=sys.stderr)
"""

child = subprocess.Popen([sys.executable, "-c", CHILD])
print("root started", child.pid)
