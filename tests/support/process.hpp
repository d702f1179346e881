// Runs a child process and captures what it wrote, for the end-to-end tests.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vztrace::testing {

struct ProcessResult {
    int exit_code = -1;  // when it exited
    int signal = 0;      // when a signal killed it
    std::string out;
    std::string err;
    bool timed_out = false;  // killed (with its process group) after RunOptions::timeout
    // python-style status: the exit code, or -signal.
    int status() const { return signal != 0 ? -signal : exit_code; }
};

struct RunOptions {
    std::string cwd;
    std::map<std::string, std::optional<std::string>> env;  // nullopt unsets
    std::string stdin_data;                                 // empty: /dev/null
    // A run that hangs (a process that never exits) fails its test instead of stalling
    // the suite: the child's whole process group is killed at this point.
    int timeout_seconds = 60;
};

ProcessResult run_process(const std::vector<std::string>& argv, const RunOptions& options = {});

// A child left running (a server) while the test talks to it: what it writes is read on
// demand. Killed with its process group if the test ends first.
class RunningProcess {
 public:
    RunningProcess(const std::vector<std::string>& argv, const RunOptions& options = {});
    ~RunningProcess();
    RunningProcess(const RunningProcess&) = delete;
    RunningProcess& operator=(const RunningProcess&) = delete;

    // Reads its output until stderr contains `text` (true), it closes stderr and stdout
    // (an exit: false) or the time is up (false).
    bool wait_for_stderr(const std::string& text, int timeout_seconds = 60);
    // What it wrote so far.
    const ProcessResult& so_far() const { return result_; }
    // Its pid while it runs (-1 once stopped).
    int pid() const { return pid_; }
    // Sends `signal` (0: none, it is ending by itself) and waits for its exit; killed
    // (timed_out) if it has not closed its output after `timeout_seconds`.
    ProcessResult stop(int signal, int timeout_seconds = 30);

 private:
    void read_until(const std::function<bool()>& done, int timeout_ms);
    int pid_ = -1;
    int out_fd_ = -1;
    int err_fd_ = -1;
    ProcessResult result_;
};

// A fresh directory under the test's temporary area, removed with the object.
class TempDir {
 public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }
    void write(const std::string& name, const std::string& content) const;

 private:
    std::string path_;
};

std::string read_file(const std::string& path);
bool file_exists(const std::string& path);
// The names of the entries in `dir`, hidden ones included, in sorted order.
std::vector<std::string> names_in(const std::string& dir);

// Runs `body` in a forked child (for what must not touch the test process itself: its
// descriptors, its environment) and returns the child's exit code, or 100 + its signal.
template <typename Body>
int in_forked_child(Body body) {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(body());
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

}  // namespace vztrace::testing
