# Replaces itself with sys.executable running other code; with "own-env", in an
# environment of its own (no VZTRACE_* variable).
import os
import sys

# A sanitizer build's leak checker reads its settings from the environment (the test
# suite's suppressions of CPython's own leaks): those pass, nothing of vztrace's.
SANITIZER = {name: os.environ[name] for name in ("ASAN_OPTIONS", "LSAN_OPTIONS")
             if name in os.environ}


def before_exec():
    return 1


if sys.argv[1:] in ([], ["own-env"]):
    before_exec()
    sys.stdout.flush()
    if sys.argv[1:] == ["own-env"]:
        os.execve(sys.executable, [sys.executable, __file__, "after"], SANITIZER)
    os.execv(sys.executable, [sys.executable, __file__, "after"])
else:
    def after_exec():
        return 2
    after_exec()
    print("after exec")
