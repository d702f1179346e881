# A sys.executable child whose stderr the program reads: vztrace's own lines must not be in
# it when the root was given --quiet.
import subprocess
import sys


def run_child():
    code = "def in_child():\n    return len('abc')\nprint(in_child())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


done = run_child()
print(repr(done.stdout), repr(done.stderr))
