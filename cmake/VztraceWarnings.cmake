# One INTERFACE target carries the project's warning flags; targets link it privately.
add_library(vztrace_warnings INTERFACE)
target_compile_options(vztrace_warnings INTERFACE
  $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                 -Wold-style-cast -Wcast-align
                                 -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough>)

# Code that includes Python.h: the C API's macros are C casts, and PyMethodDef needs
# function-pointer casts. Linked privately by the Python-facing targets only.
add_library(vztrace_python_warnings INTERFACE)
target_compile_options(vztrace_python_warnings INTERFACE
  $<$<CXX_COMPILER_ID:GNU,Clang>:-Wno-old-style-cast -Wno-cast-function-type>)
