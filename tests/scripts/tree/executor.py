import concurrent.futures


def cube(x):
    return x ** 3


if __name__ == "__main__":
    with concurrent.futures.ProcessPoolExecutor(max_workers=2) as executor:
        print(sum(executor.map(cube, range(10))))
