# Forks in a row, each straight after the last: vztrace's hidden threads stop before each
# fork and start again after it, so every fork but the first comes while they may still be
# starting. No child may hang or warn, and every one is in the trace.
import os
import warnings

warnings.simplefilter("always", DeprecationWarning)  # python gives none: no other thread


def in_child(n):
    return n


for n in range(40):
    pid = os.fork()
    if pid == 0:
        in_child(n)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0, status
print("forked 40 times")
