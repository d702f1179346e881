# Limits its own address space to what it has and 96 MiB more, holds 48 MiB of it while it
# makes 3 M calls under --ring 1G (the system refuses the ring's memory long before its
# size), then lets it go, for the trace to be written at the end. Prints "done N".
import resource


def step(i):
    return i + 1


soft, hard = resource.getrlimit(resource.RLIMIT_AS)
with open("/proc/self/statm") as statm:
    pages = int(statm.read().split()[0])
resource.setrlimit(resource.RLIMIT_AS, (pages * resource.getpagesize() + (96 << 20), hard))
ballast = bytearray(48 << 20)
total = 0
for _ in range(3_000_000):
    total = step(total)
del ballast
print("done", total)
