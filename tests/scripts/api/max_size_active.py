# active() once --max-size has stopped the recording.
import vztrace


def work():
    pass


print("before", vztrace.active())
for _ in range(300000):
    work()
print("after", vztrace.active())
