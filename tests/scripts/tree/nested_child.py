import subprocess
import sys


def child_step():
    code = "def grandchild_step():\n    return 'deep'\nprint(grandchild_step())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


print("child got", child_step())
