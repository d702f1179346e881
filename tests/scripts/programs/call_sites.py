# Call sites that call Python functions first and C functions later: a tracer that turns
# a site off after its first Python callee loses every C call made there afterwards.
import functools


def apply(fn, x):
    return fn(x)


def logged(fn):
    @functools.wraps(fn)
    def inner(*args):
        return fn(*args)
    return inner


def double(x):
    return 2 * x


def visit(node):
    handlers = {int: double, str: len, list: sum}
    return handlers[type(node)](node)


for _ in range(10):
    apply(lambda s: 0, "abc")
for _ in range(10):
    apply(len, "abc")

py_double = logged(double)
c_abs = logged(abs)
for i in range(5):
    py_double(i)
    c_abs(-i)

for node in [1, "ab", [1, 2], 3, "cde", [4]]:
    visit(node)

callbacks = [double, str.upper, len, double, repr]
for callback in callbacks:
    apply(callback, "x")


# A C method is named by the type that defines it, however it is called: bound to an
# instance of a subclass, it was named by the subclass (Stack.append beside list.append).
class Stack(list):
    pass


class Registry(dict):
    pass


stack = Stack()
for i in range(3):
    stack.append(i)
push = stack.append
push(9)
list.append(stack, 10)
Registry.fromkeys("ab")
dict.fromkeys("cd")
Registry().get("x")
