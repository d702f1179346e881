# --ring with many short threads: 60,000 calls of leaf() made by THREADS threads one after
# another. Each ended thread held a whole chunk of the ring (4096 records) for the 600 or
# so it used, and 200 threads kept 6,700 calls where one thread keeps 29,000 (hunt AR).
import sys
import threading


def leaf():
    pass


def body(calls):
    for _ in range(calls):
        leaf()


threads = int(sys.argv[1])
for _ in range(threads):
    thread = threading.Thread(target=body, args=(60_000 // threads,))
    thread.start()
    thread.join()
print("done")
