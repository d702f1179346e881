# Daemon threads that are taking reprs (the API's arguments, --log-func-args') when the
# interpreter ends: CPython ends each with pthread_exit when it next wants the GIL, in the
# middle of vztrace's frames.
import threading
import time

import vztrace


class Slow:
    def __repr__(self):
        total = 0
        for i in range(200):
            total += i
        return "Slow"


def marks():
    while True:
        vztrace.instant("tick", value=Slow())


def called(value):
    return value


def calls():
    while True:
        called(Slow())


for target in (marks, marks, calls):
    threading.Thread(target=target, daemon=True).start()
time.sleep(0.2)
print("main ends")
