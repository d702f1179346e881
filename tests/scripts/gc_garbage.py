# What the program's first gc.collect() finds that is a module: python leaves none.
import gc

gc.set_debug(gc.DEBUG_SAVEALL)
gc.collect()
print(sorted(str(o) for o in gc.garbage if type(o) is type(gc)))
# Nothing saved is left for the interpreter's end (with DEBUG_SAVEALL still on, 3.11 leaves
# gc.garbage's storage allocated, which LeakSanitizer reports).
gc.set_debug(0)
gc.garbage.clear()
