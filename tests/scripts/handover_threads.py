# Threads in calls while the main thread sets a trace function, which makes the frame hook
# give way (3.11: to the profile hook). Each thread counts its own calls of f.
import sys
import threading

# Threads switch every 0.1 ms, not 5: as many hand-overs met at a call's start, in a
# twentieth of the calls (and of the trace the test reads).
sys.setswitchinterval(0.0001)

counts = [0, 0, 0]


def f(slot, n):
    counts[slot] += 1
    if n:
        f(slot, n - 1)


def worker(slot, running, stop):
    f(slot, 0)
    running.set()
    while not stop.is_set():
        f(slot, 10)


stop = threading.Event()
threads = []
for slot in range(len(counts)):
    running = threading.Event()
    thread = threading.Thread(target=worker, args=(slot, running, stop))
    thread.start()
    running.wait()
    threads.append(thread)
# The hand-over, while every worker is in its loop of calls (waiting for the GIL, as likely
# as not at a call's first instruction); then each makes 1,000 more calls.
sys.settrace(lambda *args: None)
at_hand_over = list(counts)
while min(now - then for now, then in zip(counts, at_hand_over)) < 1000:
    pass
stop.set()
for thread in threads:
    thread.join()
sys.settrace(None)
print("f ran", sum(counts), "times")
