# Closes stderr, then opens a data file of its own, which gets descriptor 2 (argv[1]: its
# path). vztrace's summary at the end must not land in it.
import os
import sys

os.close(2)
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
assert fd == 2, fd
os.write(fd, b"the program's data\n")
