# A daemon-like program closes every descriptor it did not open, opens files that take
# the lowest numbers again, and is then sent SIGTERM: its files hold what it wrote, no more.
import os
import signal
import sys
import time


def work():
    return sum(range(100))


work()
os.closerange(3, 4096)
first = os.open(os.path.join(sys.argv[1], "first"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
second = os.open(os.path.join(sys.argv[1], "second"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
os.write(first, b"first\n")
os.write(second, b"second\n")
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(30)  # not reached: SIGTERM ends the program
