# A forked child that leaves the calls it inherited by an exception (SystemExit raised
# three calls deep): their ends are the parent's calls', not calls of the child's.
import os


def leaf():
    return 1


def deep(n):
    if n:
        return deep(n - 1)
    pid = os.fork()
    if pid == 0:
        leaf()
        raise SystemExit(0)
    os.waitpid(pid, 0)


deep(3)
print("done")
