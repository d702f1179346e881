# Prints whether the trace vztrace is writing (its temporary file beside the output) has
# grown while the program still runs.
import os
import sys


def leaf(i):
    return i


for i in range(300_000):
    leaf(i)
directory, name = os.path.split(sys.argv[1])
sizes = [os.path.getsize(os.path.join(directory, entry))
         for entry in os.listdir(directory) if entry.startswith("." + name + ".vztrace-")]
print("growing" if sizes and max(sizes) > 1_000_000 else "not growing", len(sizes))
