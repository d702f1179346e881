# --log-exception: C functions that raise (the exception handled where it is called, with
# and without a call in the handler; left to propagate; converted to another one), and an
# exception raised 12,000 frames deep, far deeper than a C call per frame allows, then one
# raised near the top again.
import math
import sys

sys.setrecursionlimit(20000)


def handled_with_call():
    try:
        math.sqrt(-1)
    except ValueError as error:
        return repr(error)


def handled_quietly():
    try:
        math.sqrt(-2)
    except ValueError:
        pass


def propagates():
    math.sqrt(-3)


def converts():
    try:
        math.sqrt(-4)
    except ValueError:
        raise KeyError("converted") from None


def down(n):
    if n == 0:
        raise RuntimeError("bottom")
    down(n - 1)


print(handled_with_call())
handled_quietly()
for function in (propagates, converts):
    try:
        function()
    except (ValueError, KeyError) as error:
        print("caught", repr(error))
for depth in (12000, 3):
    try:
        down(depth)
    except RuntimeError as error:
        print("caught", error, depth)
