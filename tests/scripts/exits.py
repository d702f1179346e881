# Leaves in the way argv[1] names; vztrace must give python's status and output.
import os
import signal
import sys


def deeper(n):
    if n == 0:
        raise ValueError("deep failure")
    deeper(n - 1)


def main(mode):
    print("start", mode, flush=True)
    if mode == "exit3":
        sys.exit(3)
    if mode == "exitmsg":
        sys.exit("leaving with a message")
    if mode == "raise":
        deeper(4)
    if mode == "kbint":
        raise KeyboardInterrupt
    if mode == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
    if mode == "osexit":
        os._exit(7)
    if mode == "exit0":
        sys.exit(0)
    if mode == "osexit0":
        os._exit(0)
    print("normal end")


main(sys.argv[1])
