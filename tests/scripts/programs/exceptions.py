class Boom(Exception):
    pass


def fail(depth):
    if depth == 0:
        raise Boom("deep")
    return fail(depth - 1)


def guarded(depth):
    try:
        return fail(depth)
    except Boom:
        return -depth
    finally:
        cleanup()


def cleanup():
    return None


def converts(text):
    try:
        return int(text)
    except ValueError:
        return None


print([guarded(d) for d in range(6)], [converts(t) for t in ("1", "x", "3")])
