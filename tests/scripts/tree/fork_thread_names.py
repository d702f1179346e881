# Thread names in forked children (hunt AR): the trace named a child's only thread by the
# name of the parent's main thread, "MainThread", whatever the child called it, when the
# child ended by os._exit or sys.exit. Each child prints "<pid> <its thread's name>".
import os
import sys
import threading


def fork(rename, how):
    pid = os.fork()
    if pid == 0:
        if rename:
            threading.current_thread().name = rename
        print(os.getpid(), threading.current_thread().name, flush=True)
        if how == "_exit":
            os._exit(0)
        sys.exit(0)
    os.waitpid(pid, 0)


fork("child-main", "_exit")
fork("child-exit", "exit")
forker = threading.Thread(target=fork, args=(None, "_exit"), name="forker")
forker.start()
forker.join()
