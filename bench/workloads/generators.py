# Generators and coroutines: yield, yield from, send, generator expressions.
from _scale import scaled


def numbers(n):
    for i in range(n):
        yield i


def evens(source):
    for x in source:
        if x % 2 == 0:
            yield x


def chained(n):
    yield from evens(numbers(n))
    yield from (x * x for x in range(10))


def accumulator():
    total = 0
    while True:
        value = yield total
        total += value


acc = accumulator()
next(acc)
result = 0
for _ in range(scaled(80000)):
    result += sum(chained(60))
    result += acc.send(3)
print("generators checksum", result)
