def numbers(n):
    for i in range(n):
        yield i * i


def pipeline(n):
    return sum(x for x in numbers(n) if x % 2)


def delegating(n):
    yield from numbers(n)
    yield -1


squares = {i: i * i for i in range(10)}
print(pipeline(30), list(delegating(4)), len(squares), sorted({x % 5 for x in range(50)}))
