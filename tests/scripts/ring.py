# One long call around many short ones: a ring smaller than the run keeps only the newest.
def leaf(i):
    return i


def outer():
    for i in range(300_000):
        leaf(i)


outer()
print("done")
