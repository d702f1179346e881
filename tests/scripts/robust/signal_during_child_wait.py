# A root whose child outlives it: the child waits until the root lets its pipe go (at the
# root's end, before vztrace waits for its children), sends it SIGTERM, and lives 5 s more.
import os
import subprocess
import sys

CHILD = """
import os, sys, time
os.read(int(sys.argv[1]), 1)
if os.getppid() == int(sys.argv[2]):
    os.kill(int(sys.argv[2]), 15)
time.sleep(5)
"""
read_end, write_end = os.pipe()
subprocess.Popen([sys.executable, "-c", CHILD, str(read_end), str(os.getpid())], pass_fds=[read_end])
os.close(read_end)
print("done")
