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
# Python code in the at-fork hooks (logging registers some): it ran pending calls, which on
# 3.13 started vztrace's threads again before python counted the process's threads.
os.register_at_fork(after_in_parent=lambda: None)
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
print("forked again without a warning")
