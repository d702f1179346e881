# Imported by own_tool_ids.py: a function that runs before the program's own tool starts.


def helper():
    return 1


helper()
