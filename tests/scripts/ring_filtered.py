# A ring smaller than the run, with a recording control that leaves the ring's loop out:
# what the control leaves out before the ring's cut stays out after it. The argument names
# the control: depth (--max-stack-depth 10), ignore, pause, sparse (--log-sparse).
import sys

import vztrace


def leaf(i):
    return i


def loop():
    for i in range(200_000):
        leaf(i)


def nest(n):
    if n == 0:
        loop()
        return 0
    return nest(n - 1) + 1


@vztrace.ignore
def noisy():
    loop()


@vztrace.sparse
def marked():
    loop()


def kept():
    pass


how = sys.argv[1]
if how == "depth":
    nest(30)
elif how == "ignore":
    noisy()
elif how == "pause":
    vztrace.pause()
    loop()
    vztrace.resume()
else:
    marked()
for _ in range(10):
    kept()
