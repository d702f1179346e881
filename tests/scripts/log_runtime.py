# --log-gc, --log-print, --log-audit: a collection of generation 1, prints with sep, end
# and file, and an open().
import gc
import os
import sys
import tempfile


class Shown:
    def __str__(self):
        return "shown"


gc.collect(1)
print("hello", 42, Shown(), sep="-", end="!\n")
print("to stderr", file=sys.stderr)
print()
path = os.path.join(tempfile.gettempdir(), f"vztrace_log_runtime_{os.getpid()}.txt")
with open(path, "w") as f:
    print("in file", file=f)
os.remove(path)
print("end", flush=True)
