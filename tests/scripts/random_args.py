# Calls whose arguments compress badly: each leaf() gets 48 random hex digits.
import random


def leaf(text):
    return len(text)


rng = random.Random(7)
total = 0
for _ in range(100_000):
    total += leaf(rng.randbytes(24).hex())
print(total)
