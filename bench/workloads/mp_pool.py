# A multiprocessing pool (fork) mapping a pure-Python function.
import multiprocessing

from _poolwork import fib
from _scale import scaled

if __name__ == "__main__":
    with multiprocessing.get_context("fork").Pool(2) as pool:
        print("pool checksum", sum(pool.map(fib, [18] * scaled(1200))))
