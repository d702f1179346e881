# The program profiles part of itself with cProfile. On 3.11 cProfile's enable() set its
# own profile function on the thread in place of vztrace's: nothing more was recorded there,
# after disable() too (0 calls of leaf of 106). Its own results must stay python's.
import cProfile
import io
import pstats
import sys


def leaf():
    pass


def counted(profiler):
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).print_stats("leaf")
    return [line.split()[0] for line in out.getvalue().splitlines() if "(leaf)" in line]


profiler = cProfile.Profile()
profiler.enable()
print("getprofile is the profiler:", sys.getprofile() is profiler)
leaf()
profiler.disable()
print("after disable:", sys.getprofile())
for _ in range(100):
    leaf()
with cProfile.Profile() as second:
    for _ in range(5):
        leaf()
print("first saw", counted(profiler), "second saw", counted(second))
