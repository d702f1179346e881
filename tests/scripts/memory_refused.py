# Fills a limit on the address space, then calls a function whose name (300 KB) vztrace
# has not seen yet: python needs no new memory for the call, vztrace does for the name.
# Prints "ok called" under python.
import resource


def before():
    return 1


before()
name = "f" + "x" * 300_000
namespace = {}
exec(f"def {name}():\n    return 2\n", namespace)
late = namespace[name]

hold = []
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
with open("/proc/self/statm") as statm:
    pages = int(statm.read().split()[0])
resource.setrlimit(resource.RLIMIT_AS, (pages * resource.getpagesize() + (64 << 20), hard))
size = 1 << 20
while size >= 64:  # a few allocations of each size, down to nothing left
    try:
        while True:
            hold.append(bytearray(size))
    except MemoryError:
        size //= 2
try:
    late()
    outcome = "called"
except MemoryError:
    outcome = "MemoryError"
hold.clear()
resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
print("ok", outcome)
