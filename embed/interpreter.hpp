// embed/ owns the interpreter's life: PyConfig from a python-style argv, the virtualenv,
// sys.executable, Py_RunMain. The public header has no Python.h.
#pragma once

#include <string>
#include <vector>

#include "tracer/settings.hpp"

namespace vztrace::embed {

struct RunRequest {
    std::string argv0;                     // vztrace's own argv[0]
    std::vector<std::string> python_argv;  // from the target on, as python would get it
    std::string process_name;              // how the trace names this process
    tracer::TraceSettings trace;
    // An earlier image of this process held the terminating signals across its exec
    // (tracer::signals::taken_from_earlier_image).
    bool signals_held_by_earlier_image = false;
};

// Runs the program exactly as python would and returns its exit status (or vztrace's
// kTraceNotWritten if the program succeeded but its trace could not be written).
// Throws SetupError when the interpreter cannot be set up.
int run_program(const RunRequest& request);

// "Python 3.12.1 (/path/to/libpython3.12.so.1.0)", for --version.
std::string describe_python();

}  // namespace vztrace::embed
