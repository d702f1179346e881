# --log-print in children: a process started with sys.executable, and a fork.
import os
import subprocess
import sys

subprocess.run([sys.executable, "-c", "print('from the child')"], check=True)
pid = os.fork()
if pid == 0:
    print("from the fork", flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print("from the root")
