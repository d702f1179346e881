# Starts vztrace again (sys.executable) with an -o of its own: that run is a trace of its
# own, written where it was told.
import subprocess
import sys


def start_inner(path):
    code = "def inner_only():\n    return 1\ninner_only()"
    return subprocess.run([sys.executable, "--quiet", "-o", path, "-c", code]).returncode


print("inner exited", start_inner(sys.argv[1]))
