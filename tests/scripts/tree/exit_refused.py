# os._exit called wrongly raises and exits nothing: the program goes on, and ends with
# os._exit(3).
import os


def after():
    return 2


for bad in [("x",), (1, 2), (2**80,), ()]:
    try:
        os._exit(*bad)
    except (TypeError, OverflowError) as error:
        print(type(error).__name__, flush=True)
after()
try:
    os._exit(status="3")
except TypeError as error:
    print(type(error).__name__, flush=True)
after()
os._exit(status=3)
