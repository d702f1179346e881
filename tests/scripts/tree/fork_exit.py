# os.fork; the child leaves with os._exit, the parent waits.
import os


def in_child():
    return sum(range(10))


def in_parent():
    return 1


def before_fork():
    return 0


before_fork()
pid = os.fork()
if pid == 0:
    in_child()
    os._exit(3)
in_parent()
_, status = os.waitpid(pid, 0)
print("child status", os.waitstatus_to_exitcode(status))
