# Threads started and joined one after another, as a server that starts one per request
# does: 300 of them, each calling work() once. Prints "300".
import threading

done = []


def work():
    done.append(1)


for _ in range(300):
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
print(len(done))
