# Two levels of sys.executable children.
import os
import subprocess
import sys


def parent_step():
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, os.path.join(here, "nested_child.py")],
                         capture_output=True, text=True, check=True).stdout
    return out.strip()


print("parent got:", parent_step())
