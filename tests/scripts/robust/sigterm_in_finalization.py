# SIGTERM while the interpreter finalizes (a __del__ at module teardown): python dies at
# once, printing nothing more (status 143).
import os
import signal


def marked():
    return 1


class Finalized:
    def __del__(self, _kill=os.kill, _pid=os.getpid(), _term=signal.SIGTERM):
        _kill(_pid, _term)
        for _ in range(100000):
            pass
        print("after")


marked()
finalized = Finalized()
