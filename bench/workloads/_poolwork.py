# The pool workload's function lives in a module: cProfile runs the script in a way that
# breaks pickling of functions defined in __main__.


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
