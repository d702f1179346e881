// The tracer's entry points for embed/. No Python.h here.
//
// prepare_tracing() runs before the interpreter exists: it registers a C audit hook (the
// one public way to run code that early) and a Py_AtExit writer. The interpreter's first
// audit event then installs the hooks, before site, .pth files, sitecustomize and every
// user import, all of which are recorded under a "python start-up" slice.
#pragma once

#include <sys/stat.h>

#include <string>
#include <vector>

#include "tracer/process_tree.hpp"
#include "tracer/settings.hpp"

namespace vztrace::tracer {

// `plan` says what this process does with its recording at its end (see process_tree.hpp).
// Opens the process's trace stream; returns why it cannot be written (empty when fine).
std::string prepare_tracing(const TraceSettings& settings, const TreePlan& plan,
                            std::string process_name);

// After initialisation, right before the program runs: ends the start-up slice, registers
// the exit handler that names live threads and stops recording, and the handlers that keep
// a process's trace when it leaves early (os._exit, exec, SIGTERM, SIGHUP) or forks.
void program_starts();

// False when a trace was due but could not be written (the reason is on stderr).
bool trace_written();

// Python ends the process while it initialises (-V, --help, a bad -X option or setting),
// before any program: the recording is dropped, as Session::abandon says. Nothing without
// prepare_tracing.
void end_before_program();

// execve/execv/fexecve called from C (exported by vztrace's executable): this image's
// recording ends first, when this process is recording. Under os.execv or os.execve it
// goes on if the exec fails; from other C code (subprocess's child after a preexec_fn,
// which then tries the next path or leaves with _exit) it has ended.
void before_c_exec();
// Whether an exec of `path` (a descriptor's as /proc/self/fd/N) with environment `envp`
// ends this process's trace for good: a recording root's (or a process writing its own
// file) of a program known not to be vztrace (see next_image.hpp), which no image of
// vztrace's will go on with. Then before_exec_of_another() writes the trace in place of
// before_c_exec(), and after_failed_exec_of_another() says so should the exec fail.
bool exec_ends_trace(const char* path, char* const envp[]);
void before_exec_of_another();
// `envp` without the variables that place a process in this one's tree (places_in_tree),
// null-terminated: what the other program is given.
std::vector<char*> environment_for_another(char* const envp[]);
void after_failed_exec_of_another();
// Before it, for an exec of `target` (a file's identity) by a recording root: where it is
// vztrace's executable, the terminating signals are held from before the recording ends to
// across the exec (true; see signals::hold_across_exec), and let go by after_failed_exec()
// should the exec fail, or should no part be left for the next image after all
// (part_left_for_next_image()).
bool hold_signals_for_exec(const struct stat& target);
bool part_left_for_next_image();
void after_failed_exec();  // under os.exec*, once the recording has gone on
void let_signals_go();     // at once
// _exit or exit called from C (_exit is exported too) with `status`: this process's
// recording ends and is written first, when it is recording. A thread with the GIL ends it
// at once (subprocess's child whose preexec_fn raised); one without (faulthandler's
// watchdog, ctypes, which lets the GIL go, a C library's own thread) takes the GIL first,
// once the program has started. Returns the status to exit with: 0 becomes 74 when the
// trace could not be written, as at the program's end.
int before_c_exit(int status);

}  // namespace vztrace::tracer
