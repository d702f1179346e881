# --log-exception: a C function that raises (caught where it is called, and converted to
# another exception before it leaves its caller), and an exception raised 12,000 frames
# deep, far deeper than a C call per frame allows, then one raised near the top again.
import math
import sys

sys.setrecursionlimit(20000)


def c_raises():
    try:
        math.sqrt(-1)
    except ValueError as error:
        return str(error)


def converts():
    try:
        math.sqrt(-2)
    except ValueError:
        raise KeyError("converted") from None


def down(n):
    if n == 0:
        raise RuntimeError("bottom")
    down(n - 1)


print(c_raises())
try:
    converts()
except KeyError as error:
    print("caught", error)
for depth in (12000, 3):
    try:
        down(depth)
    except RuntimeError as error:
        print("caught", error, depth)
