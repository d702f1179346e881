# Installs a frame-evaluation function of its own (tests/ext/evalhook.cpp) between two
# rounds of calls, then puts the default back for a third: every call is counted the same
# under vztrace as it happens. argv[1]: the directory holding the built extension.
import sys

sys.path.insert(0, sys.argv[1])
import evalhook


def leaf(n):
    return n + 1


def gen(n):
    for i in range(n):
        yield leaf(i)


def fails():
    raise ValueError("no")


def round_of_calls():
    total = sum(gen(3))  # 3 leaf calls, one generator run to its end
    try:
        fails()
    except ValueError:
        pass
    return total + leaf(0)


for _ in range(5):
    round_of_calls()
evalhook.install()
for _ in range(7):
    round_of_calls()
evalhook.uninstall()
for _ in range(11):
    round_of_calls()
print("its function saw frames:", evalhook.frames() > 0)
