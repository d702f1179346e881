# After the frame hook has given way (the program set a trace function), a call aborted at
# its first instruction (the trace function raised at its 'call') inside a call begun
# since: both end where they end, and what follows is not nested in them.
import sys


def aborted():
    pass


def after():
    pass


def raising_trace(frame, event, arg):
    if event == "call" and frame.f_code.co_name == "aborted":
        raise ValueError("refused")


def around():
    sys.settrace(raising_trace)
    try:
        aborted()
    except ValueError:
        pass
    sys.settrace(None)


sys.settrace(lambda *args: None)  # the frame hook gives way here
sys.settrace(None)
around()
after()
print("done")
