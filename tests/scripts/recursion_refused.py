# A recursion that runs into a low recursion limit, shallower than the frame hook's own
# depth (150): the last call is refused at its entry and never runs.
import sys

sys.setrecursionlimit(int(sys.argv[1]))
runs = 0


def runaway(k):
    global runs
    runs += 1
    return runaway(k + 1)


try:
    runaway(0)
except RecursionError:
    print("runaway ran", runs, "times")
