def leaf(i):
    return i + 1


total = 0
for i in range(200_000):
    total += leaf(i)
print(total)
