// Shared helpers of the end-to-end tests: the built vztrace, the python it embeds, and
// the test scripts (paths come from CMake).
#pragma once

#include <string>
#include <vector>

#include "support/process.hpp"
#include "support/trace.hpp"

namespace vztrace::e2e {

// What differs from one python's build to another's: this build's vztrace, the python it
// embeds and its minor version, and the test extension modules' directory. e2e.cpp alone is
// compiled with them (tests/CMakeLists.txt), so the other test files compile the same for
// every python and .ci/run's ccache compiles them once. Constant-initialized: ready before
// any static object of a test file is made.
extern const char* const kPythonBinary;
extern const char* const kExtensionsDirectory;
extern const int kPythonMinor;

// The vztrace under test: this build's, or the one $VZTRACE_TEST_SANITIZED_VZTRACE names, a
// vztrace built with the sanitizers against the same python (.ci/run's ASan stage runs these
// tests against it without building them again). The tests tagged [unsanitized] and
// [cpython] are not for such a vztrace (tests/CMakeLists.txt labels them "unsanitized").
std::string vztrace_under_test();
inline const std::string kVztrace = vztrace_under_test();
// Whether the vztrace under test carries its own C++ runtime (launcher/CMakeLists.txt): the
// built one does where the python is shared; a sanitized one never does.
bool static_cxx_runtime();
inline const std::string kPython = kPythonBinary;
inline const std::string kScripts = VZTRACE_TEST_SCRIPTS;
inline const std::string kExtensions = kExtensionsDirectory;

inline std::string script(const std::string& name) { return kScripts + "/" + name; }

// Runs `python ARGS` and `vztrace --quiet -o TRACE ARGS`, returning both.
struct Pair {
    testing::ProcessResult python;
    testing::ProcessResult vztrace;
};
Pair run_both(const std::vector<std::string>& args, const testing::RunOptions& options,
              const std::string& trace_path);

// Python names itself by its argv[0] in messages, as vztrace does in python's: the path run.
std::string normalized_python_stderr(const std::string& err);

// Prints both runs when a parity check fails.
std::string describe(const Pair& pair);

testing::ProcessResult run_vztrace(const std::vector<std::string>& args,
                                   const testing::RunOptions& options = {});

inline bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// The name the trace gives the Python function `qualname` defined at `file`:`line`.
inline std::string named(const std::string& qualname, const std::string& file, int line) {
    return qualname + " (" + file + ":" + std::to_string(line) + ")";
}

// `vztrace --quiet -o TRACE OPTIONS PROGRAM...` (TRACE in `dir`), which must exit 0, and
// the trace it wrote.
struct Traced {
    testing::ProcessResult result;
    testing::Trace trace;
};
Traced traced(const std::vector<std::string>& options, const std::vector<std::string>& program,
              const testing::TempDir& dir);

// A copy of the built executable alone in `dir`, without the modules beside it.
std::string lone_copy(const testing::TempDir& dir);

}  // namespace vztrace::e2e
