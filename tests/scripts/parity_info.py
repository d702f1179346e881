# Prints what a program can see of how it was started; vztrace must match python.
import sys

modules_at_start = sorted(sys.modules)

import locale  # noqa: E402
import pickle  # noqa: E402


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y


if __name__ == "__main__":
    print("modules", modules_at_start)
    print("argv", sys.argv)
    print("orig_argv", sys.orig_argv[1:])
    print("path0", sys.path[0] if sys.path else None)
    print("path", sys.path)
    print("flags", sys.flags)
    print("file", __file__, "name", __name__)
    print("utf8", sys.flags.utf8_mode, sys.getfilesystemencoding(), sys.stdout.encoding)
    print("locale", locale.getpreferredencoding(False), locale.setlocale(locale.LC_CTYPE))
    print("prefix", sys.prefix, sys.base_prefix)
    print("modules-main", type(sys.modules["__main__"]).__name__)
    point = pickle.loads(pickle.dumps(Point(3, 4)))
    print("pickle", type(point).__module__, type(point).__qualname__, point.x + point.y)
    import signal
    print("signals", [str(signal.getsignal(s)) for s in (signal.SIGTERM, signal.SIGHUP,
                                                          signal.SIGINT)])
    print("to stderr", file=sys.stderr)
