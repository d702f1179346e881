# A child started with sys.executable whose part cannot be written (a file size limit of
# 4 KiB, set for it alone): its exit status is its program's, as under python.
import resource
import subprocess
import sys


def limit():
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


child = subprocess.run([sys.executable, "-c", "for i in range(300000): abs(i)"],
                       preexec_fn=limit)
print("child returncode:", child.returncode)
