# Four threads running Python code (the GIL takes turns).
import threading

from _scale import scaled


def collatz_steps(n):
    steps = 0
    while n != 1:
        n = step(n)
        steps += 1
    return steps


def step(n):
    return n // 2 if n % 2 == 0 else 3 * n + 1


results = [0] * 4


def work(index):
    results[index] = sum(collatz_steps(n) for n in range(1 + index, scaled(40000), 4))


threads = [threading.Thread(target=work, args=(i,), name=f"bench-{i}") for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("threads checksum", sum(results))
