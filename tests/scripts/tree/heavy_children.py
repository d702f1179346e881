# Two forked children and the parent each call leaf() 100,000 times.
import os


def leaf(i):
    return i


def work():
    total = 0
    for i in range(100_000):
        total += leaf(i)
    return total


children = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        work()
        os._exit(0)
    children.append(pid)
work()
for pid in children:
    os.waitpid(pid, 0)
print("done")
