// The one error type that set-up code throws and main() catches, and the exit codes a
// person can rely on. No Python.h here: the launcher includes this header.
#pragma once

#include <stdexcept>
#include <string>

namespace vztrace {

// Exit statuses of vztrace itself. The traced program's own status always passes through
// untouched; these appear only when vztrace could not do its part.
enum class ExitCode : int {
    kRegressed = 1,         // diff: the new trace's time is past --fail-over
    kUsage = 2,             // bad command line (python uses 2 as well)
    kEnvironment = 3,       // the interpreter cannot be set up (e.g. venv of another Python)
    kNewCalls = 4,          // diff: functions called more often (--fail-on-new-calls)
    kBadTrace = 65,         // report: the file is not a trace, or is damaged (EX_DATAERR)
    kNoTrace = 66,          // report: the file cannot be read (EX_NOINPUT)
    kOutOfMemory = 71,      // after-run tools: the system refused memory (EX_OSERR)
    kTraceNotWritten = 74,  // the program succeeded but its trace could not be written
};

class SetupError : public std::runtime_error {
 public:
    SetupError(ExitCode code, const std::string& message)
        : std::runtime_error(message), code_(code) {}
    ExitCode code() const { return code_; }

 private:
    ExitCode code_;
};

}  // namespace vztrace
