# Replaces itself with sys.executable running other code.
import os
import sys


def before_exec():
    return 1


if len(sys.argv) == 1:
    before_exec()
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, __file__, "after"])
else:
    def after_exec():
        return 2
    after_exec()
    print("after exec")
