# SIGTERM (from a child, 0.3 s on) while the main thread holds the GIL in C code that never
# ends: python dies of it at once.
import collections
import itertools
import os
import subprocess

subprocess.Popen(["/bin/sh", "-c", f"sleep 0.3; kill -TERM {os.getpid()}"])
print("looping", flush=True)
collections.deque(itertools.count(), maxlen=0)
