# A program that clears its $TMPDIR between two children (hunt AU): the first child's
# trace went with vztrace's directory there, with nothing said, and the second child was
# said not to be traced because "its tree's root had ended".
import os
import shutil
import subprocess
import sys
import tempfile

subprocess.run([sys.executable, "-c", "print('first child')"], check=True)
directory = tempfile.gettempdir()
for name in os.listdir(directory):
    shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
subprocess.run([sys.executable, "-c", "print('second child')"], check=True)
print("done")
