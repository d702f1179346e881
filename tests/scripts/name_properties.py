# A Thread and a multiprocessing Process whose `name` is a property of the program's own:
# vztrace names threads and processes without running it (it did, at a thread's start, at
# the program's exit and in a forked child).
import multiprocessing
import threading


class Thread(threading.Thread):
    @property
    def name(self):
        print("Thread.name read", flush=True)
        return "x"

    @name.setter
    def name(self, value):
        pass

    @property
    def native_id(self):
        print("Thread.native_id read", flush=True)
        return 0


class Process(multiprocessing.Process):
    @property
    def name(self):
        print("Process.name read", flush=True)
        return "y"

    @name.setter
    def name(self, value):
        pass


def work():
    print("worker ran", flush=True)


if __name__ == "__main__":
    thread = Thread(target=work)
    thread.start()
    thread.join()
    process = Process(target=work)
    multiprocessing.set_start_method("fork")
    process.start()
    process.join()
    # Still running at the program's end, when vztrace names the threads left.
    idle = Thread(target=threading.Event().wait, daemon=True)
    idle.start()
    print("done", process.exitcode)
