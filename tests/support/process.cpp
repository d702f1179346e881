#include "support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace vztrace::testing {

namespace {

// Starts argv in its own process group with stdout and stderr on the pipes' write ends,
// stdin on `in_pipe`'s read end (or /dev/null), in options' cwd and environment.
pid_t start_child(const std::vector<std::string>& argv, const RunOptions& options,
                  const int out_pipe[2], const int err_pipe[2], const int in_pipe[2]) {
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        setpgid(0, 0);
        // Signals as ctest gives them, however this binary was started: a shell's background
        // job has SIGINT and SIGQUIT ignored, which a child inherits (the tests of those
        // signals then waited for a death that never came).
        for (int signum = 1; signum < NSIG; ++signum) {
            struct sigaction action {};
            if (sigaction(signum, nullptr, &action) == 0 && action.sa_handler == SIG_IGN) {
                ::signal(signum, SIG_DFL);
            }
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        if (options.stdin_data.empty()) {
            const int null = open("/dev/null", O_RDONLY);
            dup2(null, 0);
        } else {
            dup2(in_pipe[0], 0);
        }
        if (!options.cwd.empty() && chdir(options.cwd.c_str()) != 0) _exit(126);
        for (const auto& [name, value] : options.env) {
            if (value) {
                setenv(name.c_str(), value->c_str(), 1);
            } else {
                unsetenv(name.c_str());
            }
        }
        std::vector<char*> args;
        for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    return pid;
}

void make_pipes(int out_pipe[2], int err_pipe[2], int in_pipe[2]) {
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0 ||
        pipe2(in_pipe, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe failed");
    }
}

void wait_for(pid_t pid, ProcessResult& result) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
}

// Reads the child's stdout and stderr into `result` until both close (each fd is then -1)
// or `done` says so (true), or `deadline` passes (false).
bool read_output(int& out_fd, int& err_fd, ProcessResult& result,
                 std::chrono::steady_clock::time_point deadline,
                 const std::function<bool()>& done) {
    char buffer[65536];
    while ((out_fd >= 0 || err_fd >= 0) && !done()) {
        int wait_ms = -1;
        if (deadline != std::chrono::steady_clock::time_point::max()) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            wait_ms = static_cast<int>(left.count()) + 1;
        }
        pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
        if (poll(fds, 2, wait_ms) <= 0) continue;
        int* owners[2] = {&out_fd, &err_fd};
        std::string* sinks[2] = {&result.out, &result.err};
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) continue;
            const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0) {
                sinks[i]->append(buffer, static_cast<std::size_t>(n));
            } else {
                close(fds[i].fd);
                *owners[i] = -1;
            }
        }
    }
    return true;
}

// The first line of /proc/PID/FILE, or "".
std::string proc_line(pid_t pid, const char* file) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/" + file, std::ios::binary);
    std::string line;
    std::getline(in, line);
    return line;
}

// What the processes of group `group` are doing, to be read in a CI log once a run has
// hung: each one's command line, state and kernel wait, and its threads' stacks when gdb
// is installed (.ci/install-deps installs it). A hang seen once in hundreds of runs can
// then be understood from the run that showed it.
std::string describe_group(pid_t group) {
    std::string text = "\n--- the test's run timed out; its processes, as they were:\n";
    // Stacks for the first few: gdb takes a second or more for each, and a pool of workers
    // is many alike.
    int stacks_left = 8;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
        const std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        const pid_t pid = std::atoi(name.c_str());
        // stat: "pid (comm) state ppid pgrp ...", comm may hold spaces and parentheses.
        const std::string stat = proc_line(pid, "stat");
        const std::size_t close = stat.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream fields(stat.substr(close + 1));
        std::string state;
        pid_t parent = 0, process_group = 0;
        if (!(fields >> state >> parent >> process_group) || process_group != group) continue;
        std::string command = proc_line(pid, "cmdline");
        std::replace(command.begin(), command.end(), '\0', ' ');
        text += "pid " + name + " (parent " + std::to_string(parent) + ", state " + state +
                ", waiting in " + proc_line(pid, "wchan") + "): " + command.substr(0, 300) + "\n";
        if (stacks_left-- <= 0) continue;
        RunOptions gdb_options;
        gdb_options.timeout_seconds = 30;
        const ProcessResult stacks = run_process(
            {"gdb", "-p", name, "-batch", "-nx", "-ex", "thread apply all bt 40"}, gdb_options);
        std::istringstream lines(stacks.out);
        for (std::string line; std::getline(lines, line);) {
            if (line.rfind("Thread ", 0) == 0 || line.rfind("#", 0) == 0) {
                text += line.substr(0, 200) + "\n";
            }
        }
    }
    return text;
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const RunOptions& options) {
    int out_pipe[2], err_pipe[2], in_pipe[2];
    make_pipes(out_pipe, err_pipe, in_pipe);
    const pid_t pid = start_child(argv, options, out_pipe, err_pipe, in_pipe);
    close(out_pipe[1]);
    close(err_pipe[1]);
    close(in_pipe[0]);
    if (!options.stdin_data.empty()) {
        // Small inputs only: the pipe buffer holds them without a reader.
        if (write(in_pipe[1], options.stdin_data.data(), options.stdin_data.size()) < 0) {
            throw std::runtime_error("write to child's stdin failed");
        }
    }
    close(in_pipe[1]);

    ProcessResult result;
    int out_fd = out_pipe[0], err_fd = err_pipe[0];
    const auto never = [] { return false; };
    std::string processes;
    if (!read_output(
            out_fd, err_fd, result,
            std::chrono::steady_clock::now() + std::chrono::seconds(options.timeout_seconds),
            never)) {
        result.timed_out = true;
        processes = describe_group(pid);
        kill(-pid, SIGKILL);
        read_output(out_fd, err_fd, result, std::chrono::steady_clock::time_point::max(), never);
    }
    wait_for(pid, result);
    if (result.timed_out) result.err += processes;
    return result;
}

RunningProcess::RunningProcess(const std::vector<std::string>& argv, const RunOptions& options) {
    int out_pipe[2], err_pipe[2], in_pipe[2];
    make_pipes(out_pipe, err_pipe, in_pipe);
    RunOptions no_stdin = options;
    no_stdin.stdin_data.clear();
    pid_ = start_child(argv, no_stdin, out_pipe, err_pipe, in_pipe);
    close(out_pipe[1]);
    close(err_pipe[1]);
    close(in_pipe[0]);
    close(in_pipe[1]);
    out_fd_ = out_pipe[0];
    err_fd_ = err_pipe[0];
}

RunningProcess::~RunningProcess() {
    if (pid_ > 0) {
        kill(-pid_, SIGKILL);
        wait_for(pid_, result_);
    }
    if (out_fd_ >= 0) close(out_fd_);
    if (err_fd_ >= 0) close(err_fd_);
}

void RunningProcess::read_until(const std::function<bool()>& done, int timeout_ms) {
    read_output(out_fd_, err_fd_, result_,
                std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms), done);
}

bool RunningProcess::wait_for_stderr(const std::string& text, int timeout_seconds) {
    read_until([&] { return result_.err.find(text) != std::string::npos; }, timeout_seconds * 1000);
    return result_.err.find(text) != std::string::npos;
}

ProcessResult RunningProcess::stop(int signal, int timeout_seconds) {
    if (pid_ <= 0) return result_;
    if (signal != 0) kill(pid_, signal);
    read_until([] { return false; }, timeout_seconds * 1000);
    if (out_fd_ >= 0 || err_fd_ >= 0) {
        result_.timed_out = true;
        result_.err += describe_group(pid_);
        kill(-pid_, SIGKILL);
    }
    wait_for(pid_, result_);
    pid_ = -1;
    return result_;
}

TempDir::TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "vztrace-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = std::filesystem::canonical(pattern).string();
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

void TempDir::write(const std::string& name, const std::string& content) const {
    const std::filesystem::path target = file(name);
    std::filesystem::create_directories(target.parent_path());
    std::ofstream(target) << content;
}

std::string read_file(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
}

bool file_exists(const std::string& path) { return std::filesystem::exists(path); }

std::vector<std::string> names_in(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace vztrace::testing
