# What a program can see of the threads in its process: vztrace's own are not there.
import os
import sys
import threading
import warnings

warnings.simplefilter("always", DeprecationWarning)  # python gives none: no other thread
print("threads", threading.active_count(), [t.name for t in threading.enumerate()])
pid = os.fork()
if pid == 0:
    print("child threads", threading.active_count(), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print("forked without a warning", sys.version_info >= (3, 12))
