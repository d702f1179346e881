# A spawn Pool terminated at the end of its `with` block while workers may still be
# starting up or finalizing: nothing but the result is printed, as under python.
import multiprocessing


def work(x):
    return x + 1


if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        print(sum(pool.map(work, range(4))))
