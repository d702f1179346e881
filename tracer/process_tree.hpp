// ProcessTree: how the processes of one traced program tree find each other. The root
// makes a private directory (mkdtemp, 0700) and names it in VZTRACE_PARTS_DIR; every
// traced child (fork, or vztrace re-entered through sys.executable) marks itself started
// there and, when it ends, leaves its part. The root waits a bounded time for the parts
// of children it knows have started, then writes one trace. No Python.h here.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tracer/part_file.hpp"
#include "tracer/settings.hpp"

namespace vztrace::tracer {

enum class ProcessRole {
    kRoot,      // writes the trace: its own capture and its children's parts
    kChild,     // hands its part to the root through the parts directory
    kOwnFile,   // writes a file of its own (--pid-suffix, --output-dir)
    kUntraced,  // a child of a root run with --ignore-multiprocess
};

struct TreePlan {
    ProcessRole role = ProcessRole::kRoot;
    std::string parts_dir;  // kRoot and kChild; kOwnFile once an image of it execs
    std::string output;     // the file this process writes (kRoot, kOwnFile)
    pid_t root_pid = 0;     // kChild: its tree's root, from VZTRACE_ROOT_PID
    // kOwnFile: the output and the directory (empty: the output's) that every process's
    // file is named from, absolute as the first process found them: a forked child that
    // changed directory names its own from the same.
    std::string own_file_output;
    std::string own_file_dir;
    bool continued =
        false;  // kRoot, kOwnFile: an image exec'd by an earlier one, whose part counts
    // The process the user started (or an image it exec'd), not a child of a traced one:
    // only its exit status says that the trace could not be written (74). A child's is the
    // program's, which its parent reads.
    bool started_by_user = true;
    // VZTRACE_OUTPUT in the environment is vztrace's (for its children and next images),
    // not the user's.
    bool output_variable_ours = true;
};

// Whether `variable` (NAME=value) is one of vztrace's that place a process in this
// process's tree (its root, its parts directory, vztrace's own VZTRACE_OUTPUT): a program
// other than vztrace that this process execs is given none of them, so that a vztrace it
// runs starts a tree of its own rather than go on with (or into) a trace already written.
bool places_in_tree(std::string_view variable, const TreePlan& plan);

// Reads the VZTRACE_* environment to find this process's place in the tree, and sets the
// environment its children will inherit. Returns an error message (empty when fine), e.g.
// for an output directory that cannot be written.
std::string plan_process_tree(const TraceSettings& settings, TreePlan& plan);

// Before an exec: whether the part of this image can be left in a parts directory for the
// next (a root's and a child's always; a process writing its own file gets a directory of
// its own, which its entry in the roots' registry names for the next image).
bool keep_parts_for_next_image(TreePlan& plan);

// The plan of a child forked from a process whose plan was `parent`.
TreePlan plan_after_fork(const TreePlan& parent, const TraceSettings& settings);

// Files of one process image in the parts directory (a pid can exec a new image).
std::string started_marker(const std::string& dir, pid_t pid, std::uint64_t nonce);
std::string part_path(const std::string& dir, pid_t pid, std::uint64_t nonce);  // the summary
std::string stream_path(const std::string& dir, pid_t pid, std::uint64_t nonce);
// Left by a child killed before its program began (see terminating_signals.hpp).
std::string killed_marker_path(const std::string& dir, pid_t pid, std::uint64_t nonce);
// Left by a child that could not write its part (it said why on stderr): the root does
// not call it killed.
std::string failed_marker_path(const std::string& dir, pid_t pid, std::uint64_t nonce);
void mark_started(const std::string& dir, pid_t pid, std::uint64_t nonce);

// What the processes of a tree count together, in shared memory in the parts directory
// (a process without one counts alone): packet sequence ids, which must be unique across
// the whole trace, and the bytes written, which --max-size caps for the whole trace.
struct TreeCounters {
    std::atomic<std::uint32_t> sequences{0};
    std::atomic<std::uint64_t> bytes{0};
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free &&
              std::atomic<std::uint64_t>::is_always_lock_free);
TreeCounters& tree_counters(const std::string& parts_dir);
std::string counters_path(const std::string& parts_dir);  // the file tree_counters maps
std::uint32_t next_sequence_id(const std::string& parts_dir);

struct ChildPart {
    std::int64_t pid = 0;
    std::string stream;                     // its Perfetto stream
    std::optional<ProcessSummary> summary;  // none: cut short (killed, or still running)
    bool still_running = false;
    bool failed = false;  // it could not write its part (a failed marker)
};

struct CollectedParts {
    std::vector<ChildPart> parts;
    std::vector<std::int64_t> missing_pids;              // started, but left nothing
    std::vector<std::int64_t> failed_pids;               // of those, could not write it
    std::vector<std::int64_t> killed_before_start_pids;  // killed before the program began
    std::vector<std::string> errors;                     // damaged parts
};

// Reads every part in `dir` except `self`'s, waiting at most `wait` for children that are
// still alive and have not left theirs; once `hurried` (when given) says true, at most
// `hurried_wait` more. `last`: the tree's end, after which no child may begin in `dir`
// (tree_ended_marker).
CollectedParts collect_parts(const std::string& dir, pid_t self, std::chrono::milliseconds wait,
                             bool (*hurried)() = nullptr,
                             std::chrono::milliseconds hurried_wait = {}, bool last = false);

// Made in the parts directory at the tree's end: a child that finds it once its stream is
// made is not traced.
std::string tree_ended_marker(const std::string& dir);

// What a child finds in the parts directory once its stream is made there: the tree still
// running, its end marked (tree_ended_marker), or the directory gone.
enum class TreeEnd { kRunning, kEnded, kRemoved };
TreeEnd tree_end(const std::string& dir);

// Removes the parts directory and what is in it.
void remove_parts_dir(const std::string& dir);

}  // namespace vztrace::tracer
