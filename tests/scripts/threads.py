import threading


def work(n):
    total = 0
    for i in range(n):
        total += square(i)
    return total


def square(x):
    return x * x


results = {}


def worker(index):
    results[index] = work(100 + index)


threads = [threading.Thread(target=worker, args=(i,), name=f"worker-{i}") for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(sorted(results.items()))
