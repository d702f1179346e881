# sys.executable children started with an environment of their own, which holds none of the
# VZTRACE_* variables: one directly (env={}), one through a shell that clears its
# environment before it execs. The program prints what each child wrote: vztrace's own
# lines must not be in the stderr it reads.
import os
import shlex
import subprocess
import sys

# A sanitizer build's leak checker reads its settings from the environment (the test
# suite's suppressions of CPython's own leaks): those pass, nothing of vztrace's.
SANITIZER = {name: os.environ[name] for name in ("ASAN_OPTIONS", "LSAN_OPTIONS")
             if name in os.environ}


def bare_child():
    code = "def in_bare_child():\n    return 1\nprint(in_bare_child())"
    return subprocess.run([sys.executable, "-c", code], env=dict(SANITIZER),
                          capture_output=True, text=True)


def shell_child():
    code = "def in_shell_child():\n    return 2\nprint(in_shell_child())"
    settings = " ".join(shlex.quote(f"{name}={value}") for name, value in SANITIZER.items())
    command = f'exec env -i {settings} "$0" -c "$1"'
    return subprocess.run(["/bin/sh", "-c", command, sys.executable, code],
                          capture_output=True, text=True)


def bare_parent():
    """A child with env={} finds no VZTRACE_* variable in its environment, as under python,
    and the child it starts in turn (whose environment it passes on) is still traced."""
    code = ("import os, subprocess, sys\n"
            "print(sorted(name for name in os.environ if name.startswith('VZTRACE_')),"
            " flush=True)\n"
            "grandchild = 'def in_grandchild():\\n    return 3\\nprint(in_grandchild())'\n"
            "subprocess.run([sys.executable, '-c', grandchild])")
    return subprocess.run([sys.executable, "-c", code], env=dict(SANITIZER),
                          capture_output=True, text=True)


for done in (bare_child(), shell_child(), bare_parent()):
    print(repr(done.stdout), repr(done.stderr), done.returncode)
