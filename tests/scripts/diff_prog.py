# The same program at two sizes, for `vztrace diff`: work() runs its generator over N items
# five times; extra(), called only given a second argument, sleeps (the lines are the test's).
import sys
import time

def work(n):
    return sum(i * i for i in range(n))


def extra():
    time.sleep(0.2)  # the time grows by far more than a loaded host's stall of the base run
    return 1


size = int(sys.argv[1])
for _ in range(5):
    work(size)
if len(sys.argv) > 2:
    extra()
