# Exec attempts that fail, and a program that goes on: not found (os.execv, and os.execvp
# trying each directory of PATH), in a forked child too, and refused by an audit hook.
import os
import sys


def before():
    return 1


def after():
    return 2


def watched(event):
    return event


refusing = False


def hook(event, args):
    if event == "os.exec":
        watched(event)
        if refusing:
            raise PermissionError("no exec here")


def attempt(run):
    try:
        run()
    except OSError as error:
        print(type(error).__name__, flush=True)


hook.__cantrace__ = True  # profilers see its calls (python hides an audit hook's otherwise)
sys.addaudithook(hook)
before()
attempt(lambda: os.execv("/nonexistent/prog", ["prog"]))
os.environ["PATH"] = "/nonexistent/a:/nonexistent/b"
attempt(lambda: os.execvp("prog", ["prog"]))
pid = os.fork()
if pid == 0:
    attempt(lambda: os.execv("/nonexistent/prog", ["prog"]))
    after()
    os._exit(0)
os.waitpid(pid, 0)
refusing = True
attempt(lambda: os.execv(sys.executable, [sys.executable, "-c", "pass"]))
for _ in range(3):
    after()
