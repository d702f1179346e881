# sys.executable children started with an environment of their own, which holds none of the
# VZTRACE_* variables: one directly (env={}), one through a shell that clears its
# environment before it execs. The program prints what each child wrote: vztrace's own
# lines must not be in the stderr it reads.
import subprocess
import sys


def bare_child():
    code = "def in_bare_child():\n    return 1\nprint(in_bare_child())"
    return subprocess.run([sys.executable, "-c", code], env={}, capture_output=True, text=True)


def shell_child():
    code = "def in_shell_child():\n    return 2\nprint(in_shell_child())"
    command = 'exec env -i "$0" -c "$1"'
    return subprocess.run(["/bin/sh", "-c", command, sys.executable, code],
                          capture_output=True, text=True)


for done in (bare_child(), shell_child()):
    print(repr(done.stdout), repr(done.stderr), done.returncode)
