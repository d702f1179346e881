#include "tracer/root_registry.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tracer/output_file.hpp"

extern char** environ;

namespace vztrace::tracer {
namespace {

constexpr const char* kRootPid = "VZTRACE_ROOT_PID";
constexpr std::string_view kPrefix = "VZTRACE_";

// The entry this process left (a forked child inherits the name, not the entry).
std::string g_entry;
pid_t g_entry_pid = 0;

// A process that adopted an ancestor's settings: the VZTRACE_* names its environment had
// of its own before (see leave_environment_as_given).
std::optional<std::set<std::string>> g_own_names;

std::set<std::string> vztrace_names() {
    std::set<std::string> names;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const std::string_view variable(*entry);
        if (variable.starts_with(kPrefix)) names.emplace(variable.substr(0, variable.find('=')));
    }
    return names;
}

struct ProcessIds {
    pid_t parent = 0;
    std::uint64_t start = 0;  // clock ticks after boot: with the pid, names one process
};

std::string read_small_file(int fd) {
    std::string text;
    char buffer[4096];
    while (true) {
        const ssize_t got = ::read(fd, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        text.append(buffer, static_cast<std::size_t>(got));
    }
    return text;
}

// Fields 4 (ppid) and 22 (starttime) of /proc/PID/stat; the command before them, in
// parentheses, may hold spaces and parentheses of its own.
std::optional<ProcessIds> read_ids(pid_t pid) {
    const int fd = ::open(fmt::format("/proc/{}/stat", pid).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    const std::string line = read_small_file(fd);
    ::close(fd);
    const std::size_t close = line.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    ProcessIds ids;
    std::size_t at = close + 2;
    for (int field = 3; field <= 22 && at < line.size(); ++field) {
        const std::size_t end = line.find(' ', at);
        if (field == 4) ids.parent = static_cast<pid_t>(std::atol(line.c_str() + at));
        if (field == 22) {
            ids.start = std::strtoull(line.c_str() + at, nullptr, 10);
            return ids;
        }
        if (end == std::string::npos) break;
        at = end + 1;
    }
    return std::nullopt;
}

// A directory of this user's, with no access for anyone else: only then are its entries
// trusted to name where a trace goes.
bool private_dir(const std::string& path, bool create) {
    if (create && ::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return false;
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == ::geteuid() &&
           (st.st_mode & 077) == 0;
}

// "123-456" -> {123, 456}; "123-456.new" (an entry being written) too, with `*being_written`
// set; anything else -> none.
std::optional<std::pair<pid_t, std::uint64_t>> parse_entry_name(const char* name,
                                                                bool* being_written) {
    char* end = nullptr;
    errno = 0;
    const long pid = std::strtol(name, &end, 10);
    if (end == name || *end != '-' || pid <= 0 || errno != 0) return std::nullopt;
    const char* start_text = end + 1;
    const unsigned long long start = std::strtoull(start_text, &end, 10);
    if (end == start_text || errno != 0) return std::nullopt;
    *being_written = std::strcmp(end, ".new") == 0;
    if (*end != '\0' && !*being_written) return std::nullopt;
    return std::pair{static_cast<pid_t>(pid), static_cast<std::uint64_t>(start)};
}

std::optional<std::vector<std::string>> read_entry(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return std::nullopt;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) {
        ::close(fd);
        return std::nullopt;
    }
    const std::string text = read_small_file(fd);
    ::close(fd);
    std::vector<std::string> variables;
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t end = text.find('\0', at);
        if (end == std::string::npos) end = text.size();
        std::string variable = text.substr(at, end - at);
        if (variable.starts_with(kPrefix) && variable.find('=') != std::string::npos) {
            variables.push_back(std::move(variable));
        }
        at = end + 1;
    }
    return variables;
}

// The directory a root that is gone left its children's parts in (VZTRACE_PARTS_DIR of its
// entry): removed, when it is the one vztrace made for that root (named vztrace-PID-...),
// a directory of this user's, not a link. A root killed, or one that exec'd a program
// other than vztrace, could not remove it, and it can hold as much as a trace.
void remove_parts_left_by(pid_t root, const std::optional<std::vector<std::string>>& variables) {
    if (!variables) return;
    constexpr std::string_view kKey = "VZTRACE_PARTS_DIR=";
    for (const std::string& variable : *variables) {
        if (!variable.starts_with(kKey)) continue;
        const std::filesystem::path dir(variable.substr(kKey.size()));
        struct stat st {};
        if (!dir.is_absolute() ||
            !dir.filename().string().starts_with(fmt::format("vztrace-{}-", root)) ||
            ::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) {
            return;
        }
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
        return;
    }
}

}  // namespace

bool in_traced_tree() {
    const char* root = std::getenv(kRootPid);
    return root != nullptr && *root != '\0';
}

std::string default_registry_dir() {
    // Not $TMPDIR: a child with an environment of its own may not have it. One for each pid
    // namespace: a root's pid means nothing in another, where its entry was taken for a
    // gone root's, and a vztrace started there (a container sharing /tmp) removed the
    // parts directory of a root still running, its children's calls lost (hunt AU).
    struct stat namespace_id {};
    if (::stat("/proc/self/ns/pid", &namespace_id) != 0) {
        return fmt::format("/tmp/vztrace-roots-{}", ::geteuid());
    }
    return fmt::format("/tmp/vztrace-roots-{}-{}", ::geteuid(),
                       static_cast<std::uint64_t>(namespace_id.st_ino));
}

void register_root(const std::string& registry, const std::vector<std::string>& also) {
    const pid_t self = ::getpid();
    const std::optional<ProcessIds> ids = read_ids(self);
    if (!ids || !private_dir(registry, true)) return;
    std::string content;
    const auto overridden = [&also](std::string_view variable) {
        const std::string_view name = variable.substr(0, variable.find('=') + 1);
        for (const std::string& added : also) {
            if (added.starts_with(name)) return true;
        }
        return false;
    };
    for (char** variable = environ; *variable != nullptr; ++variable) {
        if (std::string_view(*variable).starts_with(kPrefix) && !overridden(*variable)) {
            content += *variable;
            content += '\0';
        }
    }
    for (const std::string& variable : also) {
        content += variable;
        content += '\0';
    }
    const std::string entry = fmt::format("{}/{}-{}", registry, self, ids->start);
    const std::string temporary = entry + ".new";
    const int fd =
        ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return;
    std::size_t written = 0;
    {
        WriteSignalsHeld held;  // past RLIMIT_FSIZE: no entry, not the death of the process
        while (written < content.size()) {
            const ssize_t put = ::write(fd, content.data() + written, content.size() - written);
            if (put < 0 && errno == EINTR) continue;
            if (put < 0) held.failed(errno);
            if (put <= 0) break;
            written += static_cast<std::size_t>(put);
        }
    }
    const bool whole = ::close(fd) == 0 && written == content.size();
    if (!whole || ::rename(temporary.c_str(), entry.c_str()) != 0) {
        ::unlink(temporary.c_str());
        return;
    }
    g_entry = entry;
    g_entry_pid = self;
}

std::optional<std::vector<std::string>> take_own_entry(const std::string& registry) {
    const pid_t self = ::getpid();
    const std::optional<ProcessIds> ids = read_ids(self);
    if (!ids || !private_dir(registry, false)) return std::nullopt;
    const std::string entry = fmt::format("{}/{}-{}", registry, self, ids->start);
    auto variables = read_entry(entry);
    if (variables) {
        g_entry = entry;
        g_entry_pid = self;
    }
    return variables;
}

void unregister_root() {
    if (g_entry_pid != ::getpid() || g_entry.empty()) return;
    ::unlink(g_entry.c_str());
    g_entry.clear();
    g_entry_pid = 0;
}

std::string registered_entry() { return g_entry_pid == ::getpid() ? g_entry : std::string(); }

bool root_registered(const std::string& registry, pid_t root) {
    const std::optional<ProcessIds> ids = read_ids(root);
    struct stat found {};
    return ids && private_dir(registry, false) &&
           ::lstat(fmt::format("{}/{}-{}", registry, root, ids->start).c_str(), &found) == 0;
}

std::optional<std::vector<std::string>> ancestor_root_environment(const std::string& registry,
                                                                  pid_t self) {
    if (!private_dir(registry, false)) return std::nullopt;
    std::set<std::pair<pid_t, std::uint64_t>> roots;
    DIR* dir = ::opendir(registry.c_str());
    if (dir == nullptr) return std::nullopt;
    while (const dirent* item = ::readdir(dir)) {
        bool being_written = false;
        const auto root = parse_entry_name(item->d_name, &being_written);
        if (!root) continue;
        const std::optional<ProcessIds> now = read_ids(root->first);
        if (now && now->start == root->second) {
            if (!being_written) roots.insert(*root);
        } else {
            // That root is gone (killed, or it exec'd another program); one killed while it
            // wrote its entry left the entry's ".new" (such files were never removed), whose
            // text may be cut short: nothing in it is trusted to name a directory.
            const std::string entry = fmt::format("{}/{}", registry, item->d_name);
            if (!being_written) remove_parts_left_by(root->first, read_entry(entry));
            ::unlink(entry.c_str());
        }
    }
    ::closedir(dir);
    if (roots.empty()) return std::nullopt;
    // This process first: an entry with its pid and start time is an earlier image's, a
    // root that exec'd vztrace with an environment of its own (os.execve(..., {})). Then
    // up the ancestry to init; the bound guards against a cycle read from a racing /proc.
    pid_t pid = self;
    for (int depth = 0; pid > 0 && depth < 4096; ++depth) {
        const std::optional<ProcessIds> ids = read_ids(pid);
        if (!ids) break;
        if (roots.count({pid, ids->start}) != 0) {
            return read_entry(fmt::format("{}/{}-{}", registry, pid, ids->start));
        }
        pid = ids->parent;
    }
    return std::nullopt;
}

bool adopt_ancestor_root(const std::string& registry) {
    if (in_traced_tree()) return false;
    const auto variables = ancestor_root_environment(registry, ::getpid());
    if (!variables) return false;
    g_own_names = vztrace_names();
    for (const std::string& variable : *variables) {
        const std::size_t equals = variable.find('=');
        // What the program put in the child's environment wins, as it does when inherited.
        ::setenv(variable.substr(0, equals).c_str(), variable.c_str() + equals + 1, 0);
    }
    return true;
}

void leave_environment_as_given() {
    if (!g_own_names) return;
    for (const std::string& name : vztrace_names()) {
        if (!g_own_names->contains(name)) ::unsetenv(name.c_str());
    }
}

}  // namespace vztrace::tracer
