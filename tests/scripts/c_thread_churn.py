# Threads that C code starts one after another, each running a ctypes callback (its thread
# state taken and dropped by PyGILState_Ensure/Release; threading and _thread never see
# it): prints how far the peak RSS grew, in MB, from the 300th thread to the 3,000th
# (python: next to nothing; a thread that ended must not keep memory for it).
import ctypes

libc = ctypes.CDLL(None)


def leaf(i):
    return len([i])


@ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
def body(arg):
    for i in range(3):
        leaf(i)
    return None


def peak_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def churn(count):
    for _ in range(count):
        thread = ctypes.c_ulong()
        if libc.pthread_create(ctypes.byref(thread), None, body, None) != 0:
            raise OSError("pthread_create failed")
        libc.pthread_join(thread, None)


churn(300)
before = peak_kb()
churn(2700)
print((peak_kb() - before) // 1024)
