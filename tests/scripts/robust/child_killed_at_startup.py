# Starts a child that is killed by SIGTERM during its start-up, before any of its code.
import os
import subprocess
import sys


def parent_work():
    env = dict(os.environ, KILL_AT_STARTUP="1")
    return subprocess.run([sys.executable, "-c", "print('child ran')"], env=env).returncode


print("child status", parent_work())
