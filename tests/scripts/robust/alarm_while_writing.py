# SIGTERM, then SIGALRM (a timer of 50 ms, at SIG_DFL) while vztrace writes the trace of
# 300,000 calls as JSON: python dies of the first at once, status 143.
import os
import signal


def work(k):
    return k


for i in range(300000):
    work(i)
signal.setitimer(signal.ITIMER_REAL, 0.05)
os.kill(os.getpid(), signal.SIGTERM)
print("not reached")
