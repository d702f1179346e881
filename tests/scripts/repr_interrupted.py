# A Ctrl-C that arrives while vztrace takes a repr (--log-func-args): the KeyboardInterrupt
# it raises there must still reach the program.
import os
import signal


class Interrupting:
    def __repr__(self):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs at the next check
            pass
        return "Interrupting()"


def takes(obj):
    return None


try:
    takes(Interrupting())
    for _ in range(100000):
        pass
    print("the Ctrl-C was lost")
except KeyboardInterrupt:
    print("KeyboardInterrupt reached the program")
