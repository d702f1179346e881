# Removes every file of its working directory, as a build script's `git clean -xf` does,
# vztrace's temporary trace among them.
import os


def clean():
    removed = 0
    for name in os.listdir("."):
        os.remove(name)
        removed += 1
    return removed


clean()
print(sorted(os.listdir(".")))
