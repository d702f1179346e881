# The program changes directory, then forks: a child writing a file of its own names it as
# its parent did, whatever the directory it inherits.
import os


def g():
    return 1


os.makedirs("sub", exist_ok=True)
os.chdir("sub")
child = os.fork()
if child == 0:
    g()
    os._exit(0)
os.waitpid(child, 0)
g()
print("done")
