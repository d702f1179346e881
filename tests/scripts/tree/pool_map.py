# Pool(4).map over a pure-Python function with the start method named in argv[1].
import multiprocessing
import sys


def work(x):
    return square(x) + 1


def square(x):
    return x * x


if __name__ == "__main__":
    context = multiprocessing.get_context(sys.argv[1])
    pool = context.Pool(4)
    print(sum(pool.map(work, range(40))))
    pool.close()
    pool.join()
