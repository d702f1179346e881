# A thread other than the main one forks; the child's only thread returns, which ends the
# child without finalizing (python's own behaviour); the parent reaps it.
import os
import threading


def in_child():
    return "child"


def worker():
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        print("parent: child reaped")
    else:
        in_child()
        print("child: worker returns", flush=True)


threading.Thread(target=worker).start()
