# The program opens and closes a file over and over, recording calls all the while, so that
# vztrace's writer writes chunk after chunk meanwhile: each open must get the lowest free
# number, as under python. vztrace opened its trace for each write and held that number
# meanwhile: a quarter of the opens got another one during 5 s of this, and the "reopen
# stdout" idiom (close 1, open, dup2 onto 1) failed with EBUSY or EBADF in one run of three.
import glob
import os
import sys

directory = sys.argv[1]


def work(i):
    return i


def stream_size():
    """The size of vztrace's stream beside the trace (none under python)."""
    for path in glob.glob(os.path.join(directory, ".*.vztrace-*")):
        try:
            return os.stat(path).st_size
        except FileNotFoundError:
            pass
    return None


probe = os.open(os.devnull, os.O_RDONLY)
os.close(probe)
mismatches = 0
sizes = set()
opens = 0
# Until vztrace has written 5 times during the loop (python: 200,000 opens).
while len(sizes) < 6 and opens < 200_000:
    fd = os.open(os.devnull, os.O_RDONLY)
    mismatches += fd != probe
    os.close(fd)
    opens += 1
    for i in range(20):
        work(i)
    if opens % 500 == 0:
        size = stream_size()
        if size is not None:
            sizes.add(size)
print("opens that missed the lowest free number:", mismatches)
