#include "tracer/process_tree.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

#include "tracer/output_file.hpp"
#include "tracer/part_file.hpp"
#include "tracer/root_registry.hpp"
#include "tracer/temp_places.hpp"

namespace vztrace::tracer {
namespace {

namespace fs = std::filesystem;

constexpr const char* kRootPid = "VZTRACE_ROOT_PID";
constexpr const char* kPartsDir = "VZTRACE_PARTS_DIR";

std::string absolute(const std::string& path) {
    if (!path.empty() && path[0] == '/') return path;
    char cwd[PATH_MAX];
    if (::getcwd(cwd, sizeof cwd) == nullptr) return path;
    return fmt::format("{}/{}", cwd, path);
}

// "dir/result.json" for pid 42 -> "dir/result_42.json" ("x.json.gz" -> "x_42.json.gz").
std::string with_pid(const std::string& output, const std::string& dir, pid_t pid) {
    const fs::path path(output);
    std::string name = path.filename().string();
    // Before the extension that names the format ("a.b.json.gz" -> "a.b_42.json.gz"), which
    // stays: "-o .json" gave ".json_42", written as Perfetto (hunt AS). A name without one
    // (not a trace's) takes it before its first dot past the leading ones.
    std::size_t dot = std::string::npos;
    for (const std::string_view extension : {".json.gz", ".json", ".pftrace", ".perfetto-trace"}) {
        if (name.ends_with(extension)) {
            dot = name.size() - extension.size();
            break;
        }
    }
    if (dot == std::string::npos) {
        dot = name.find('.', std::min(name.find_first_not_of('.'), name.size()));
    }
    if (dot == std::string::npos) dot = name.size();
    const std::string renamed = fmt::format("{}_{}{}", name.substr(0, dot), pid, name.substr(dot));
    return ((dir.empty() ? path.parent_path() : fs::path(dir)) / renamed).string();
}

std::string check_writable_dir(const std::string& file, const std::string& shown) {
    const std::string dir = fs::path(file).parent_path().string();
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
        return fmt::format("cannot write '{}': the directory '{}' is missing or not writable",
                           shown, dir);
    }
    // Refused now, not after the program has run: its temporary file, with a shorter name,
    // was made, and only the rename at the end failed, the trace lost (hunt AS).
    const std::string name = fs::path(file).filename().string();
    const long longest = ::pathconf(dir.c_str(), _PC_NAME_MAX);
    const std::size_t name_max = longest > 0 ? static_cast<std::size_t>(longest) : NAME_MAX;
    if (name.size() > name_max) {
        return fmt::format(
            "cannot write '{}': its name is {} bytes, longer than the {} a file "
            "in '{}' can have",
            shown, name.size(), name_max, dir);
    }
    return {};
}

bool process_alive(pid_t pid) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
    std::ifstream stat(fmt::format("/proc/{}/stat", pid));
    std::string line;
    if (!std::getline(stat, line)) return false;
    const auto close = line.rfind(')');
    return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

// Sets a variable for the tree's children, or takes it away when `value` is empty: one the
// user set for the root, whose command line turned that setting off, must not reach them
// (VZTRACE_MIN_DURATION=10ms with --min-duration 0: the children filtered, the root not).
void export_variable(const char* name, const std::string& value) {
    if (value.empty()) {
        ::unsetenv(name);
    } else {
        ::setenv(name, value.c_str(), 1);
    }
}

void export_flag(const char* name, bool on) { export_variable(name, on ? "1" : ""); }

// Children start with no vztrace options on their command line: the root's travel in
// VZTRACE_* variables, whether the children write into the root's trace or their own
// (--pid-suffix, --output-dir). Each is set or taken away, so that the children record
// with the root's settings whatever the environment held.
void export_settings(const TraceSettings& settings) {
    export_flag("VZTRACE_QUIET", settings.quiet);
    export_flag("VZTRACE_IGNORE_C_FUNCTION", settings.ignore_c_function);
    export_flag("VZTRACE_IGNORE_MULTIPROCESS", settings.ignore_multiprocess);
    export_variable("VZTRACE_HOOK", settings.hook == HookChoice::kAuto
                                        ? std::string()
                                        : std::string(hook_choice_name(settings.hook)));
    export_variable("VZTRACE_MAX_MEMORY", std::to_string(settings.max_memory));
    export_variable("VZTRACE_MAX_SIZE",
                    settings.max_size > 0 ? std::to_string(settings.max_size) : std::string());
    export_flag("VZTRACE_COMPRESS", settings.compress);
    // One of the two, as the root was given it (both in a child's environment were refused
    // as a usage error, its program never run).
    export_variable("VZTRACE_TRACER_ENTRIES",
                    settings.ring_calls > 0 ? std::to_string(settings.ring_calls) : std::string());
    export_variable("VZTRACE_RING", settings.ring_calls == 0 && settings.ring > 0
                                        ? std::to_string(settings.ring)
                                        : std::string());
    const auto join = [](const std::vector<std::string>& items, char separator) {
        std::string joined;
        for (const std::string& item : items) {
            if (!joined.empty()) joined += separator;
            joined += item;
        }
        return joined;
    };
    export_variable("VZTRACE_INCLUDE_FILES", join(settings.include_files, ':'));
    export_variable("VZTRACE_EXCLUDE_FILES", join(settings.exclude_files, ':'));
    export_variable("VZTRACE_MAX_STACK_DEPTH", settings.max_stack_depth > 0
                                                   ? std::to_string(settings.max_stack_depth)
                                                   : std::string());
    export_variable("VZTRACE_MIN_DURATION", settings.min_duration_ns > 0
                                                ? fmt::format("{}ns", settings.min_duration_ns)
                                                : std::string());
    export_flag("VZTRACE_NO_STARTUP", settings.no_startup);
    export_flag("VZTRACE_IGNORE_FROZEN", settings.ignore_frozen);
    export_flag("VZTRACE_LOG_FUNC_ARGS", settings.log_func_args);
    export_flag("VZTRACE_LOG_FUNC_RETVAL", settings.log_func_retval);
    export_flag("VZTRACE_LOG_EXCEPTION", settings.log_exception);
    export_flag("VZTRACE_LOG_GC", settings.log_gc);
    export_flag("VZTRACE_LOG_PRINT", settings.log_print);
    export_flag("VZTRACE_LOG_ASYNC", settings.log_async);
    export_flag("VZTRACE_LOG_SPARSE", settings.log_sparse);
    const std::string events = join(settings.log_audit_events, ',');
    export_variable("VZTRACE_LOG_AUDIT", !settings.log_audit ? std::string()
                                         : events.empty()    ? "1"
                                                             : events);
}

// A new private directory for the parts of a tree (or of one process's images), in the
// first of temp_places() where it can be made. Empty, with `error` set (the first place's
// failure), when it can be made nowhere.
std::string make_parts_dir(pid_t self, std::string& error) {
    std::string first_failure;
    for (const std::string& dir : temp_places()) {
        std::string pattern = fmt::format("{}/vztrace-{}-XXXXXX", dir, self);
        if (::mkdtemp(pattern.data()) != nullptr) return pattern;
        if (first_failure.empty()) {
            first_failure =
                fmt::format("cannot create a directory for child processes' traces ('{}'): {}",
                            pattern, std::strerror(errno));
        }
    }
    error = first_failure;
    return {};
}

// A parts directory named for process `self` by one of its images (made by
// make_parts_dir): an earlier image of this process left its part there.
bool parts_dir_of(const std::string& dir, pid_t self) {
    return !dir.empty() &&
           fs::path(dir).filename().string().starts_with(fmt::format("vztrace-{}-", self)) &&
           fs::is_directory(dir);
}

}  // namespace

bool keep_parts_for_next_image(TreePlan& plan) {
    if (plan.role != ProcessRole::kOwnFile) return !plan.parts_dir.empty();
    if (plan.parts_dir.empty()) {
        std::string ignored;
        plan.parts_dir = make_parts_dir(::getpid(), ignored);
        if (plan.parts_dir.empty()) return false;
    }
    // The next image's sequence ids follow this one's, and its bytes count after them.
    const TreeCounters& own = tree_counters("");
    TreeCounters& shared = tree_counters(plan.parts_dir);
    if (own.sequences.load() > shared.sequences.load()) shared.sequences.store(own.sequences);
    if (own.bytes.load() > shared.bytes.load()) shared.bytes.store(own.bytes);
    // The next image has the same pid and start time, whatever its environment.
    register_root(default_registry_dir(), {std::string(kPartsDir) + "=" + plan.parts_dir});
    return true;
}

std::string plan_process_tree(const TraceSettings& settings, TreePlan& plan) {
    const pid_t self = ::getpid();
    const char* root_env = std::getenv(kRootPid);
    // The tree's root, when this process is in one (0: it is not); itself after an exec.
    const pid_t root = root_env != nullptr && *root_env != '\0' ? std::atol(root_env) : 0;
    const bool is_child = root != 0 && root != self && !settings.output_on_command_line;
    if (is_child) plan.root_pid = root;
    const std::string output = absolute(settings.output);
    plan.started_by_user = !is_child;
    plan.output_variable_ours = root != 0 || std::getenv("VZTRACE_OUTPUT") == nullptr;

    if (settings.pid_suffix || !settings.output_dir.empty()) {
        // With --ignore-multiprocess only the root's images write their file.
        if (is_child && settings.ignore_multiprocess) {
            plan.role = ProcessRole::kUntraced;
            return {};
        }
        plan.role = ProcessRole::kOwnFile;
        const std::string dir = settings.output_dir.empty() ? "" : absolute(settings.output_dir);
        plan.own_file_output = output;
        plan.own_file_dir = dir;
        plan.output = with_pid(output, dir, self);
        if (!dir.empty()) {
            std::error_code ignored;
            fs::create_directories(dir, ignored);
        }
        export_variable("VZTRACE_OUTPUT_DIR", dir);
        export_flag("VZTRACE_PID_SUFFIX", dir.empty());
        ::setenv("VZTRACE_OUTPUT", output.c_str(), 1);
        if (!is_child) ::setenv(kRootPid, std::to_string(self).c_str(), 1);
        export_settings(settings);
        // An image that an earlier one of this process exec'd: that one's part is kept in
        // the directory its entry names (see keep_parts_for_next_image).
        if (const auto earlier = take_own_entry(default_registry_dir())) {
            const std::string key = std::string(kPartsDir) + "=";
            for (const std::string& variable : *earlier) {
                if (!variable.starts_with(key)) continue;
                if (parts_dir_of(variable.substr(key.size()), self)) {
                    plan.parts_dir = variable.substr(key.size());
                    plan.continued = true;
                }
            }
        }
        if (!is_child) register_root(default_registry_dir());
        return check_writable_dir(plan.output, plan.output);
    }
    if (is_child) {
        const char* parts = std::getenv(kPartsDir);
        if (settings.ignore_multiprocess || parts == nullptr || *parts == '\0') {
            plan.role = ProcessRole::kUntraced;
        } else {
            plan.role = ProcessRole::kChild;
            plan.parts_dir = parts;
        }
        return {};
    }

    plan.role = ProcessRole::kRoot;
    plan.output = output;
    if (std::string error = check_writable_dir(output, settings.output); !error.empty()) {
        return error;
    }
    ::setenv(kRootPid, std::to_string(self).c_str(), 1);
    ::setenv("VZTRACE_OUTPUT", output.c_str(), 1);  // for a vztrace this root execs
    // Its children write into its trace, not files of their own.
    ::unsetenv("VZTRACE_PID_SUFFIX");
    ::unsetenv("VZTRACE_OUTPUT_DIR");
    // Children are not traced with --ignore-multiprocess (export_settings), but the root's
    // own images are: the directory keeps the part of one that execs.
    // A root that exec'd itself keeps its directory: its earlier image's part is there.
    const char* parts = std::getenv(kPartsDir);
    if (root == self && parts != nullptr && *parts != '\0' && fs::is_directory(parts)) {
        plan.parts_dir = parts;
        plan.continued = true;
    } else {
        std::string error;
        plan.parts_dir = make_parts_dir(self, error);
        if (plan.parts_dir.empty()) return error;
        ::setenv(kPartsDir, plan.parts_dir.c_str(), 1);
    }
    export_settings(settings);
    register_root(default_registry_dir());
    return {};
}

bool places_in_tree(std::string_view variable, const TreePlan& plan) {
    const auto named = [variable](std::string_view name) {
        return variable.size() > name.size() && variable.starts_with(name) &&
               variable[name.size()] == '=';
    };
    return named(kRootPid) || named(kPartsDir) ||
           (plan.output_variable_ours && named("VZTRACE_OUTPUT"));
}

TreePlan plan_after_fork(const TreePlan& parent, const TraceSettings& settings) {
    TreePlan child = parent;
    child.started_by_user = false;
    switch (parent.role) {
        case ProcessRole::kRoot:
            child.role = parent.parts_dir.empty() || settings.ignore_multiprocess
                             ? ProcessRole::kUntraced
                             : ProcessRole::kChild;
            child.continued = false;
            break;
        case ProcessRole::kOwnFile:
            if (settings.ignore_multiprocess) {
                child.role = ProcessRole::kUntraced;
                break;
            }
            child.parts_dir.clear();  // its parent's images', if any
            child.continued = false;
            child.output = with_pid(parent.own_file_output, parent.own_file_dir, ::getpid());
            break;
        default:
            break;
    }
    return child;
}

std::string started_marker(const std::string& dir, pid_t pid, std::uint64_t nonce) {
    return fmt::format("{}/{}-{}.started", dir, pid, nonce);
}

std::string part_path(const std::string& dir, pid_t pid, std::uint64_t nonce) {
    return fmt::format("{}/{}-{}.part", dir, pid, nonce);
}

std::string stream_path(const std::string& dir, pid_t pid, std::uint64_t nonce) {
    return fmt::format("{}/{}-{}.pftrace", dir, pid, nonce);
}

std::string counters_path(const std::string& parts_dir) { return parts_dir + "/counters"; }

TreeCounters& tree_counters(const std::string& parts_dir) {
    static TreeCounters local;
    static TreeCounters* shared = nullptr;
    static std::string shared_dir;
    if (parts_dir.empty()) return local;
    if (shared == nullptr || shared_dir != parts_dir) {
        const std::string path = counters_path(parts_dir);
        const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) return local;
        struct stat st {};
        WriteSignalsHeld held;  // past RLIMIT_FSIZE: EFBIG, not the death of the process
        const bool sized =
            ::fstat(fd, &st) == 0 && (st.st_size >= static_cast<off_t>(sizeof(TreeCounters)) ||
                                      ::ftruncate(fd, sizeof(TreeCounters)) == 0);
        if (!sized) {
            held.failed(errno);
            ::close(fd);
            return local;
        }
        void* memory =
            ::mmap(nullptr, sizeof(TreeCounters), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ::close(fd);
        if (memory == MAP_FAILED) return local;
        // A new file is zero-filled: both counters start at 0.
        shared = static_cast<TreeCounters*>(memory);
        shared_dir = parts_dir;
    }
    return *shared;
}

std::uint32_t next_sequence_id(const std::string& parts_dir) {
    return tree_counters(parts_dir).sequences.fetch_add(1) + 1;
}

std::string killed_marker_path(const std::string& dir, pid_t pid, std::uint64_t nonce) {
    return fmt::format("{}/{}-{}.killed", dir, pid, nonce);
}

std::string failed_marker_path(const std::string& dir, pid_t pid, std::uint64_t nonce) {
    return fmt::format("{}/{}-{}.failed", dir, pid, nonce);
}

void mark_started(const std::string& dir, pid_t pid, std::uint64_t nonce) {
    std::ofstream(started_marker(dir, pid, nonce)).flush();
}

namespace {

// The part of the process image `stem`: whole (with its summary) or cut short.
void take_part(const std::string& dir, const std::string& stem, pid_t pid, bool still_running,
               CollectedParts& result) {
    ChildPart part;
    part.pid = pid;
    part.stream = dir + "/" + stem + ".pftrace";
    part.still_running = still_running;
    part.failed = fs::exists(dir + "/" + stem + ".failed");
    const std::string summary = dir + "/" + stem + ".part";
    std::error_code error;
    if (fs::exists(summary)) {
        std::string message;
        part.summary = read_summary(summary, message);
        if (!part.summary) result.errors.push_back(message);
    }
    // An empty stream beside a summary is that of an image that wrote straight to a device
    // or a pipe at -o before it exec'd: its events are there already, and its counts count.
    if (!fs::exists(part.stream, error) ||
        (fs::file_size(part.stream, error) == 0 && !part.summary)) {
        result.missing_pids.push_back(pid);
        if (part.failed) result.failed_pids.push_back(pid);
        return;
    }
    result.parts.push_back(std::move(part));
}

}  // namespace

namespace {

// The images in `dir` not yet `done`, other than `self`'s: each that has said it started
// (its marker), and each that has begun its stream but not yet said so (a child starting
// as the root ends: the root's last look found nothing of it).
std::vector<std::pair<std::string, pid_t>> images_in(const std::string& dir, pid_t self,
                                                     const std::set<std::string>& done) {
    std::vector<std::pair<std::string, pid_t>> images;
    std::set<std::string> seen;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(dir, error)) {
        const std::string extension = entry.path().extension().string();
        if (extension != ".started" && extension != ".pftrace") continue;
        const std::string stem = entry.path().stem().string();
        const pid_t pid = static_cast<pid_t>(std::atol(stem.c_str()));
        if (pid == self || done.contains(stem) || !seen.insert(stem).second) continue;
        // A stream with a summary and no marker is an image's that exec'd (taken below).
        if (extension == ".pftrace" && fs::exists(dir + "/" + stem + ".part", error)) continue;
        images.emplace_back(stem, pid);
    }
    return images;
}

}  // namespace

std::string tree_ended_marker(const std::string& dir) { return dir + "/ended"; }

TreeEnd tree_end(const std::string& dir) {
    struct stat found {};
    if (::stat(tree_ended_marker(dir).c_str(), &found) == 0) return TreeEnd::kEnded;
    if (::stat(dir.c_str(), &found) != 0 && errno == ENOENT) return TreeEnd::kRemoved;
    return TreeEnd::kRunning;
}

CollectedParts collect_parts(const std::string& dir, pid_t self, std::chrono::milliseconds wait,
                             bool (*hurried)(), std::chrono::milliseconds hurried_wait, bool last) {
    CollectedParts result;
    auto deadline = std::chrono::steady_clock::now() + wait;
    std::set<std::string> done;
    bool ended = !last;
    while (true) {
        std::vector<std::pair<std::string, pid_t>> pending;
        for (const auto& [stem, pid] : images_in(dir, self, done)) {
            if (fs::exists(dir + "/" + stem + ".part")) {
                done.insert(stem);
                take_part(dir, stem, pid, false, result);
            } else if (fs::exists(dir + "/" + stem + ".killed")) {
                done.insert(stem);  // killed before its program began: nothing was lost
                result.killed_before_start_pids.push_back(pid);
            } else if (!process_alive(pid)) {
                // Gone: a summary it left just now, or none (killed, crashed).
                done.insert(stem);
                take_part(dir, stem, pid, false, result);
            } else {
                pending.emplace_back(stem, pid);
            }
        }
        if (hurried != nullptr && hurried()) {
            deadline = std::min(deadline, std::chrono::steady_clock::now() + hurried_wait);
            hurried = nullptr;
        }
        const bool over = std::chrono::steady_clock::now() >= deadline;
        if ((pending.empty() || over) && !ended) {
            // The tree's end: a child that begins from now on finds the marker once its
            // stream is made, and leaves, untraced (Session::open_stream). One that began
            // before it is found by the look that follows, and waited for as the others
            // were: the last look had missed it (a child started as the root ends).
            ended = true;
            std::ofstream(tree_ended_marker(dir)).flush();
            continue;
        }
        if (pending.empty()) break;
        if (over) {
            for (const auto& [stem, pid] : pending) {
                done.insert(stem);
                take_part(dir, stem, pid, true, result);
            }
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    // Parts of images that exec'd (same pid, no marker of their own left to wait for).
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(dir, error)) {
        const std::string name = entry.path().filename().string();
        if (entry.path().extension() != ".part") continue;
        const std::string stem = name.substr(0, name.size() - 5);
        if (done.count(stem) != 0) continue;
        take_part(dir, stem, static_cast<pid_t>(std::atol(stem.c_str())), false, result);
    }
    return result;
}

void remove_parts_dir(const std::string& dir) {
    // Out of its name first: a child that begins from here on cannot make its stream there
    // and finds the directory gone (tree_end). Removed where it stands, a child's stream
    // made after the removal had read it was left, and the directory with it; one made
    // after the marker had gone, the directory still there, went on traced, read by no one.
    const std::string leaving = dir + ".removed";
    const std::string& target = ::rename(dir.c_str(), leaving.c_str()) == 0 ? leaving : dir;
    // A child's open that had found the directory before the rename may still make its
    // stream in it, after the first look: it is found by the next.
    std::error_code error;
    for (int attempt = 0; attempt < 100; ++attempt) {
        fs::remove_all(target, error);
        if (error != std::errc::directory_not_empty) return;
    }
}

}  // namespace vztrace::tracer
