# The same program at two sizes, for `vztrace diff`: work() runs its generator over N
# items five times; extra() is called only when a second argument is given.
import sys


def work(n):
    return sum(i * i for i in range(n))


def extra():
    return 1


size = int(sys.argv[1])
for _ in range(5):
    work(size)
if len(sys.argv) > 2:
    extra()
