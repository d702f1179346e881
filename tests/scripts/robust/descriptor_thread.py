# A thread of the program's, in C and without the GIL, keeps using a pipe and a file the
# program opened (fdwatch: argv[1] is where it is built, argv[2] a file to open). The
# trace must be whole and none of its bytes the thread's: the root used to close every
# descriptor at its end and open its own files under the freed numbers.
import os
import sys

sys.path.insert(0, sys.argv[1])
import fdwatch


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


read_end, write_end = os.pipe()
data = os.open(sys.argv[2], os.O_RDWR | os.O_CREAT, 0o600)
fdwatch.watch(read_end, write_end, data)
print("fib", fib(10))
