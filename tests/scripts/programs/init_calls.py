# Instances made in a loop: once the call site is warm, CPython 3.13 calls a class's
# Python __init__ from a specialised instruction (CALL_ALLOC_AND_ENTER_INIT) that pushes
# its frame without going through the frame-evaluation function.
class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y


class Labelled(Point):
    pass


def make_all(n):
    total = 0
    for i in range(n):
        total += Point(i, 1).x + Labelled(i, 2).y
    return total


print(make_all(100))
