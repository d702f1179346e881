# subprocess with a preexec_fn: it runs in the forked child, which then execs from C.
import os
import subprocess
import sys


def in_preexec():
    os.setsid()


if len(sys.argv) > 1:
    print("child ran")
    sys.exit(0)
subprocess.run(["true"], preexec_fn=in_preexec)
subprocess.run([sys.executable, __file__, "child"], preexec_fn=in_preexec)
print("done")
