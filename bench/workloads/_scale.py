# Shared by the workloads: VZBENCH_SCALE shrinks a workload for the quick smoke run.
import os

SCALE = float(os.environ.get("VZBENCH_SCALE", "1"))


def scaled(n):
    return max(1, int(n * SCALE))
