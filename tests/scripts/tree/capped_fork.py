# The parent calls leaf() 60,000 times, then forks a child that calls it 200,000 times:
# under --max-size with a file a process, the child's cap is its own file's.
import os


def leaf(i):
    return i


for i in range(60_000):
    leaf(i)
child = os.fork()
if child == 0:
    for i in range(200_000):
        leaf(i)
    os._exit(0)
os.waitpid(child, 0)
print("done")
