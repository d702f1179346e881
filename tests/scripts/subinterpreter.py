# A program that runs code in a subinterpreter (PEP 554's low-level module) between calls
# of its own. vztrace records the main interpreter: the trace must say that the
# subinterpreter's calls are not in it, and what the subinterpreter does (set a trace
# function) must not change how the main interpreter is recorded.
try:
    import _interpreters as interpreters  # 3.13
except ImportError:
    import _xxsubinterpreters as interpreters  # 3.11, 3.12


def main_side(n):
    return n


main_side(1)
other = interpreters.create()
interpreters.run_string(
    other,
    "import sys\n"
    "def sub_side(n):\n"
    "    return n\n"
    "for k in range(5):\n"
    "    sub_side(k)\n"
    "sys.settrace(None)\n"
    "print('in the subinterpreter', sub_side(7))\n",
)
interpreters.destroy(other)
for k in range(3):
    main_side(k)
print("done")
