# A `with Pool()` block: on leaving it the workers are terminated (SIGTERM).
import multiprocessing


def work(x):
    return x * 3


if __name__ == "__main__":
    with multiprocessing.get_context("fork").Pool(2) as pool:
        print(sum(pool.map(work, range(20))))
