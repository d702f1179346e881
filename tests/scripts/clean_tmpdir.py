# Removes everything in the temporary directory, as a test suite's cleanup of $TMPDIR does,
# vztrace's private directory among it, between two runs of calls.
import os
import shutil
import tempfile


def work(n):
    return n + 1


def clean():
    directory = tempfile.gettempdir()
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


for i in range(100):
    work(i)
clean()
for i in range(100):
    work(i)
print(os.listdir(tempfile.gettempdir()))
