# Names that hold " (" (export_test.cpp): a function renamed as a place, and a span.
import vztrace


def plain():
    pass


plain.__code__ = plain.__code__.replace(co_name="paren (x.py:1)", co_qualname="paren (x.py:1)")
plain()
with vztrace.span("step (phase:2)"):
    pass


def odd():
    pass


odd.__code__ = odd.__code__.replace(co_name="odd\r\x00end", co_qualname="odd\r\x00end")
odd()

# Code from a file named "": its place is ":1" (it was keyed as a built-in; cProfile has
# ('', 1, 'from_empty')).
namespace = {}
exec(compile("def from_empty():\n    return 1\n", "", "exec"), namespace)
namespace["from_empty"]()
