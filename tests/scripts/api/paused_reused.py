# One paused() object entered again before it is left; reprs the API would take while the
# recording is paused.
import vztrace

NOTRACE = vztrace.paused()


def work():
    pass


def nested(n):
    with NOTRACE:
        if n:
            nested(n - 1)
        print(n, "active inside:", vztrace.active())
        work()


reprs = 0


class Counted:
    def __repr__(self):
        global reprs
        reprs += 1
        return "Counted"


nested(1)
print("active after:", vztrace.active())
vztrace.pause()
vztrace.instant("while paused", value=Counted())
with vztrace.span("made while paused", value=Counted()):
    pass
vztrace.resume()
with vztrace.paused():
    vztrace.instant("in paused()", value=Counted())
print("reprs taken while paused:", reprs)
vztrace.instant("recorded", value=Counted())
print("reprs taken after:", reprs)
