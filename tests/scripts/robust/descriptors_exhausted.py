# A program that holds every descriptor it may have for a while (a server backing off on
# EMFILE), recording all the while, then lets them go: python ends with 0.
import errno
import os
import resource

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))


def work(k):
    return k


held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError as error:
    assert error.errno == errno.EMFILE
for i in range(300000):  # chunks of records fill and are written meanwhile
    work(i)
for fd in held:
    os.close(fd)
for i in range(1000):
    work(i)
print("done")
