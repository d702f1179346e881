# What the program's first gc.collect() finds that is a module: python leaves none.
import gc

gc.set_debug(gc.DEBUG_SAVEALL)
gc.collect()
print(sorted(str(o) for o in gc.garbage if type(o) is type(gc)))
