# A root with a forked child whose exec then fails (no such program): the child's calls,
# and the root's before the exec, are in the trace.
import os


def before():
    return 1


def in_child():
    return 2


def after():
    return 3


before()
pid = os.fork()
if pid == 0:
    in_child()
    os._exit(0)
os.waitpid(pid, 0)
try:
    os.execv("/nonexistent/prog", ["prog"])
except OSError as error:
    print(type(error).__name__, flush=True)
after()
