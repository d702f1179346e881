# Replaces itself with sys.executable opened as a descriptor (os.execve's fexecve).
import os
import sys


def before_exec():
    return 1


if len(sys.argv) == 1:
    before_exec()
    sys.stdout.flush()
    fd = os.open(sys.executable, os.O_RDONLY)
    os.execve(fd, [sys.executable, __file__, "after"], dict(os.environ))
else:
    def after_exec():
        return 2
    after_exec()
    print("after exec")
