# A trace of a known size for the `vztrace report` benchmark: VZBENCH_CALLS Python calls
# (a third of them mid(), two thirds leaf()).
import os

CALLS = int(os.environ.get("VZBENCH_CALLS", "15000000"))


def leaf(i):
    return i


def mid(i):
    return leaf(i) + leaf(i + 1)


for i in range(CALLS // 3):
    mid(i)
