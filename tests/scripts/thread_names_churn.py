# Threads started one after another in a program of 5,000 functions, each thread calling
# the last of them: prints how far the peak RSS grew, in MB, from the 300th thread to the
# 3,000th (python: next to nothing; a thread that ended must not keep memory for it).
import threading

namespace = {}
exec("\n".join(f"def f{i}():\n    return {i}" for i in range(5000)), namespace)
for i in range(5000):
    namespace[f"f{i}"]()
last = namespace["f4999"]


def peak_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def churn(count):
    for _ in range(count):
        thread = threading.Thread(target=last)
        thread.start()
        thread.join()


churn(300)
before = peak_kb()
churn(2700)
print((peak_kb() - before) // 1024)
