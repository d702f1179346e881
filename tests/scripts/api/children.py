# The API in a forked child and in a multiprocessing spawn child (api_test.cpp).
import multiprocessing
import os
import sys

import vztrace


@vztrace.span("spawn target", where="spawn")
def spawned():
    vztrace.instant("spawned instant", n=2)
    vztrace.counter("spawned counter", value=5)


def in_fork_child():
    vztrace.instant("forked instant", n=1)
    with vztrace.span("forked span"):
        vztrace.counter("forked counter", value=7)
    print("fork child active", vztrace.active(), flush=True)


if __name__ == "__main__":
    pid = os.fork()
    if pid == 0:
        in_fork_child()
        os._exit(0)
    os.waitpid(pid, 0)
    if "--spawn" in sys.argv:
        process = multiprocessing.get_context("spawn").Process(target=spawned)
        process.start()
        process.join()
        print("spawn exit", process.exitcode)
    print("parent active", vztrace.active())
