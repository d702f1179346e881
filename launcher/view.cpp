#include "launcher/view.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>
#include <vector>

#include "launcher/subcommand.hpp"
#include "launcher/subcommand_options.hpp"
#include "launcher/view_server.hpp"
#include "tracer/format/call_writers.hpp"
#include "tracer/one_line.hpp"
#include "tracer/temp_places.hpp"

extern char** environ;

namespace vztrace::launcher {
namespace {

// ui.perfetto.dev fetches a trace named by `#!/?url=` only where its Content-Security-Policy
// lets it connect: of this machine's ports, 127.0.0.1:9001 alone, trace_processor_shell
// --httpd's (connect-src in Perfetto's ui/src/frontend/index.ts; Perfetto's own
// tools/open_trace_in_ui serves there for that reason). The URL may carry any path, so the
// token stays in it; the port cannot be random. The UI also asks 9001 for a trace processor
// (POST /status): that gets 404 here, and the UI loads the trace itself.
constexpr int kPerfettoPort = 9001;

#ifdef VZTRACE_SPEEDSCOPE_DIR
constexpr const char* kBuiltSpeedscope = VZTRACE_SPEEDSCOPE_DIR;
#else
constexpr const char* kBuiltSpeedscope = "";
#endif

bool has_viewer(const std::filesystem::path& directory) {
    std::error_code ignored;
    return !directory.empty() &&
           std::filesystem::is_regular_file(directory / "index.html", ignored);
}

// speedscope's release directory: $VZTRACE_SPEEDSCOPE_DIR, else beside the executable (an
// install's share/vztrace/speedscope), else where the build put it; empty when none.
std::string find_speedscope() {
    if (const char* env = std::getenv("VZTRACE_SPEEDSCOPE_DIR"); env != nullptr && *env != 0)
        return has_viewer(env) ? env : "";
    std::error_code failed;
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", failed);
    const std::filesystem::path candidates[] = {
        exe.parent_path() / "speedscope",
        exe.parent_path() / ".." / "share" / "vztrace" / "speedscope",
        kBuiltSpeedscope,
    };
    for (const std::filesystem::path& candidate : candidates) {
        if (!failed && has_viewer(candidate)) return candidate.string();
        failed.clear();
    }
    return "";
}

// A URL's query or fragment value.
std::string url_encoded(std::string_view text) {
    std::string out;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (std::isalnum(byte) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += c;
        } else {
            out += fmt::format("%{:02X}", byte);
        }
    }
    return out;
}

// A path as a shell reads it back: as it is when it holds nothing a shell would take for
// its own, else in single quotes (a command the user may paste); a path that stderr would
// show escaped (a newline, an escape sequence, a mark of direction) in bash's $'...', each
// byte outside printable ASCII as \xNN, which reads back as those bytes.
std::string shell_quoted(const std::string& path) {
    const bool plain = !path.empty() && std::all_of(path.begin(), path.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               std::string_view("/._-+:,@%=").find(c) != std::string_view::npos;
    });
    if (plain) return path;
    if (tracer::one_line(path) != path) {
        std::string quoted = "$'";
        for (const char c : path) {
            const auto byte = static_cast<unsigned char>(c);
            if (c == '\\' || c == '\'') {
                quoted += '\\';
                quoted += c;
            } else if (byte < 0x20 || byte >= 0x7f) {
                quoted += fmt::format("\\x{:02x}", byte);
            } else {
                quoted += c;
            }
        }
        return quoted + "'";
    }
    std::string quoted = "'";
    for (const char c : path) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted + "'";
}

// The trace's file name as a path segment that needs no escaping (viewers show it).
std::string url_file_name(const std::string& path) {
    std::string name = std::filesystem::path(path).filename().string();
    for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
    }
    return name.empty() || name[0] == '.' ? "trace" + name : name;
}

// Reads a trace to check it, keeping nothing: a Perfetto trace of any size is streamed.
class CallCheck final : public format::CallVisitor {
 public:
    void thread(std::uint64_t, std::int64_t, std::int64_t, std::string_view,
                std::string_view) override {}
    void begin(std::uint64_t, std::string_view, std::int64_t) override {}
    void end(std::uint64_t, std::int64_t) override {}
};

// The trace as speedscope's JSON in an unlinked temporary file (gone when vztrace exits);
// its descriptor, or -1 with `error` set.
int speedscope_file(const format::CallLog& calls, const std::string& title, std::string& error) {
    std::string path;
    int fd = -1;
    for (const std::string& dir : tracer::temp_places()) {
        std::string tried = dir + "/vztrace-view-XXXXXX";
        fd = ::mkostemp(tried.data(), O_CLOEXEC);
        if (fd >= 0) {
            path = tried;
            break;
        }
        if (error.empty()) {
            error =
                fmt::format("cannot create {}: {}", tracer::one_line(tried), std::strerror(errno));
        }
    }
    if (fd < 0) return -1;
    error.clear();
    ::unlink(path.c_str());
    const format::WriteBytes write = [fd](std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t n = ::write(fd, bytes.data(), bytes.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    };
    if (!format::write_speedscope(calls, title, write)) {
        error = fmt::format("cannot write the trace for speedscope in {}: {}", path,
                            std::strerror(errno));
        ::close(fd);
        return -1;
    }
    return fd;
}

// The commands $BROWSER names, to be tried in turn, as xdg-utils and Python's webbrowser
// read it: separated by ':', each a program and its arguments split at spaces, with %s
// standing for the address (added last when no argument has it); "%%" is a '%'.
std::vector<std::vector<std::string>> browser_commands(std::string_view browser,
                                                       const std::string& url) {
    std::vector<std::vector<std::string>> commands;
    std::size_t start = 0;
    while (start <= browser.size()) {
        std::size_t end = browser.find(':', start);
        if (end == std::string_view::npos) end = browser.size();
        std::vector<std::string> words;
        bool placed = false;
        std::size_t at = start;
        while (at < end) {
            while (at < end && (browser[at] == ' ' || browser[at] == '\t')) ++at;
            std::size_t stop = at;
            while (stop < end && browser[stop] != ' ' && browser[stop] != '\t') ++stop;
            if (stop == at) break;
            std::string word;
            for (std::size_t i = at; i < stop; ++i) {
                if (browser[i] == '%' && i + 1 < stop && browser[i + 1] == 's') {
                    word += url;
                    placed = true;
                    ++i;
                } else if (browser[i] == '%' && i + 1 < stop && browser[i + 1] == '%') {
                    word += '%';
                    ++i;
                } else {
                    word += browser[i];
                }
            }
            words.push_back(std::move(word));
            at = stop;
        }
        if (!words.empty()) {
            if (!placed) words.push_back(url);
            commands.push_back(std::move(words));
        }
        start = end + 1;
    }
    return commands;
}

// Starts `command`; its pid, or 0 with the reason in `error`. The browser gets its own
// process group (Ctrl-C here does not close it), stdin from /dev/null, stderr for stdout
// (vztrace writes nothing to stdout), and SIGPIPE as a program started from a shell has it
// (view ignores it for itself).
pid_t start_browser(std::vector<std::string>& command, int& error) {
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&files, STDERR_FILENO, STDOUT_FILENO);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attributes, &none);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(
        &attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    std::vector<char*> argv;
    for (std::string& word : command) argv.push_back(word.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    error = ::posix_spawnp(&pid, argv[0], &files, &attributes, argv.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    posix_spawnattr_destroy(&attributes);
    return error == 0 ? pid : 0;
}

// $BROWSER's commands in turn until one starts, else xdg-open in a graphical session;
// never in a terminal alone.
void open_browser(const std::string& url) {
    std::vector<std::vector<std::string>> commands;
    if (const char* browser = std::getenv("BROWSER"); browser != nullptr && *browser != 0) {
        commands = browser_commands(browser, url);
    } else if (std::getenv("DISPLAY") != nullptr || std::getenv("WAYLAND_DISPLAY") != nullptr) {
        commands.push_back({"xdg-open", url});
    }
    pid_t pid = 0;
    std::string tried;
    for (std::vector<std::string>& command : commands) {
        int error = 0;
        pid = start_browser(command, error);
        if (pid > 0) {
            tried = command[0];
            break;
        }
        tried +=
            fmt::format("{}{}: {}", tried.empty() ? "" : "; ", command[0], std::strerror(error));
    }
    if (pid <= 0) {
        if (!tried.empty()) {
            std::fprintf(stderr,
                         "vztrace: view: cannot start a browser (%s): open the address above\n",
                         tracer::one_line(tried).c_str());
        }
        return;
    }
    // Reaped when it ends (xdg-open hands the page on and exits; it stayed a zombie until
    // view ended), and its failure said: the page may not have opened.
    std::thread([pid, command = std::move(tried)] {
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) return;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
            std::fprintf(stderr,
                         "vztrace: view: the browser (%s) exited with status %d: open the "
                         "address above\n",
                         tracer::one_line(command).c_str(), WEXITSTATUS(status));
        }
    }).detach();
}

// Serves until SIGINT or SIGTERM; 0, or an exit status if the server failed.
int serve_until_stopped(ViewServer& server, const std::string& browse, bool no_browser,
                        const std::string& serving_line) {
    // Every thread blocks the stop signals (the server's are started below) and this one
    // waits for them: no handler runs inside the server's code. They stay blocked to the
    // end: a second Ctrl-C (or a SIGTERM after a SIGINT) would otherwise end view by the
    // signal (status 130 or 143) once it had stopped as asked.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);  // a browser that closes a download
    std::atomic<bool> failed{false};
    std::thread listener([&server, &failed] {
        if (!server.run()) {
            failed = true;
            ::kill(::getpid(), SIGTERM);
        }
    });
    // "serving" only once the accept loop runs: a stop signal right after it must stop it.
    while (!server.running() && !failed) std::this_thread::yield();
    std::fprintf(stderr, "%s\n", serving_line.c_str());
    if (!no_browser) open_browser(browse);
    int signal = 0;
    sigwait(&stop_signals, &signal);
    server.stop();
    listener.join();
    return failed ? fail(ExitCode::kUsage, "view: the server stopped unexpectedly") : 0;
}

}  // namespace

int run_view(std::span<const std::string> args) {
    ViewOptions options;
    if (const int status = parse_view(args, options); status >= 0) return status;
    auto& [trace, viewer, port, no_browser] = options;

    const std::string speedscope = find_speedscope();
    if (viewer.empty()) viewer = speedscope.empty() ? "perfetto" : "speedscope";
    if (viewer == "speedscope" && speedscope.empty()) {
        const std::string how =
            "set VZTRACE_SPEEDSCOPE_DIR to the dist/release directory of speedscope's npm "
            "package, or use --viewer perfetto";
        if (std::getenv("VZTRACE_SPEEDSCOPE_DIR") != nullptr) {
            return fail(ExitCode::kUsage,
                        "view: VZTRACE_SPEEDSCOPE_DIR has no index.html: it names the "
                        "dist/release directory of speedscope's npm package (or use --viewer "
                        "perfetto)");
        }
        if (*kBuiltSpeedscope != 0) {
            return fail(ExitCode::kUsage,
                        fmt::format("view: the offline viewer (speedscope) is missing from {}: "
                                    "rebuild vztrace (cmake --build), or {}",
                                    kBuiltSpeedscope, how));
        }
        return fail(ExitCode::kUsage,
                    "view: the offline viewer (speedscope) is not installed: npm was missing "
                    "when vztrace was built; install nodejs and npm and rebuild, or " +
                        how);
    }
    const std::string token = random_token();
    if (token.empty()) return fail(ExitCode::kUsage, "view: no random token: getrandom failed");

    std::string load_error;
    const std::unique_ptr<ViewServer> loaded = ViewServer::load(token, load_error);
    if (loaded == nullptr) return fail(ExitCode::kUsage, "view: " + load_error);
    ViewServer& server = *loaded;
    // The trace is read whole before anything is served: a bad one ends here. It is then
    // served as it is, from the file: a pipe would be empty by then.
    struct stat trace_stat {};
    if (::stat(trace.c_str(), &trace_stat) == 0 && !S_ISREG(trace_stat.st_mode) &&
        !S_ISDIR(trace_stat.st_mode)) {
        return fail(ExitCode::kNoTrace,
                    fmt::format("view: {} is not a regular file: view serves the trace's file "
                                "itself (save it to a file first)",
                                trace));
    }
    format::CallReadResult read;
    if (viewer == "speedscope") {
        format::CallLog calls;
        if (const int error = read_trace(trace, calls, read); error != 0) return error;
        std::string error;
        // Named by the trace's file name: speedscope's page title, "fib.pftrace - speedscope".
        const int converted =
            speedscope_file(calls, std::filesystem::path(trace).filename().string(), error);
        if (converted < 0) return fail(ExitCode::kTraceNotWritten, "view: " + error);
        server.add_file("trace.speedscope.json", converted, "application/json");
        if (!server.add_directory("speedscope", speedscope, error))
            return fail(ExitCode::kUsage, "view: cannot read the offline viewer: " + error);
    } else {
        CallCheck check;
        if (const int error = read_trace(trace, check, read); error != 0) return error;
    }
    const int trace_fd = ::open(trace.c_str(), O_RDONLY | O_CLOEXEC);
    if (trace_fd < 0)
        return fail(ExitCode::kNoTrace, fmt::format("{}: {}", trace, std::strerror(errno)));
    const std::string name = url_file_name(trace);
    server.add_file("trace/" + name, trace_fd,
                    read.format == "perfetto" ? "application/octet-stream"
                    : read.format == "json"   ? "application/json"
                                              : "application/gzip");

    const int wanted = port.value_or(viewer == "perfetto" ? kPerfettoPort : 0);
    std::string error;
    const int bound = server.bind(wanted, error);
    if (bound < 0 && viewer == "perfetto" && wanted == kPerfettoPort) {
        return fail(ExitCode::kUsage,
                    fmt::format("view: cannot listen on 127.0.0.1:{} ({}), the only local port "
                                "ui.perfetto.dev reads traces from: stop what uses it "
                                "(trace_processor_shell --httpd, another vztrace view) or use "
                                "--viewer speedscope",
                                kPerfettoPort, error));
    }
    if (bound < 0)
        return fail(ExitCode::kUsage,
                    fmt::format("view: cannot listen on 127.0.0.1:{} ({})", wanted, error));

    const std::string base = fmt::format("http://127.0.0.1:{}/{}/", bound, token);
    const std::string trace_url = base + "trace/" + name;
    const std::string perfetto_url =
        fmt::format("{}/#!/?url={}", ViewServer::kPerfettoOrigin, trace_url);
    std::string speedscope_url;
    if (viewer == "speedscope") {
        speedscope_url =
            // No `title=`: speedscope gives that name to every profile, where each thread's
            // own is wanted; the page is named after the profile's file name anyway.
            fmt::format("{}speedscope/index.html#profileURL={}", base,
                        url_encoded(base + "trace.speedscope.json"));
        std::fprintf(stderr, "vztrace: view: speedscope (offline): %s\n", speedscope_url.c_str());
    }
    if (bound == kPerfettoPort) {
        std::fprintf(stderr, "vztrace: view: Perfetto UI (online): %s\n", perfetto_url.c_str());
    } else if (viewer == "perfetto") {
        std::fprintf(stderr,
                     "vztrace: warning: ui.perfetto.dev reads traces from 127.0.0.1:%d only; "
                     "from port %d it will not load this one: %s\n",
                     kPerfettoPort, bound, perfetto_url.c_str());
    } else {
        std::fprintf(stderr,
                     "vztrace: view: Perfetto UI (online): `vztrace view --viewer perfetto "
                     "%s` serves it on port %d, the only local port ui.perfetto.dev reads\n",
                     shell_quoted(trace).c_str(), kPerfettoPort);
    }
    std::fprintf(stderr, "vztrace: view: the trace itself: %s\n", trace_url.c_str());
    return serve_until_stopped(server, viewer == "speedscope" ? speedscope_url : perfetto_url,
                               no_browser,
                               fmt::format("vztrace: view: serving {} on 127.0.0.1:{} until Ctrl-C",
                                           tracer::one_line(trace), bound));
}

}  // namespace vztrace::launcher
