# One child process kills itself with SIGKILL; the others finish normally.
import multiprocessing
import os
import signal


def victim():
    os.kill(os.getpid(), signal.SIGKILL)


def survivor():
    return 1


if __name__ == "__main__":
    context = multiprocessing.get_context("fork")
    doomed = context.Process(target=victim, name="Victim")
    fine = context.Process(target=survivor, name="Survivor")
    doomed.start()
    fine.start()
    doomed.join()
    fine.join()
    print("victim exit", doomed.exitcode, "survivor exit", fine.exitcode)
