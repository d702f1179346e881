#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <vector>

#include "tracer/session.hpp"

using vztrace::tracer::close_descriptors_from;

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

// Runs `body` in a forked child (closing descriptors in the test process itself would
// take the test runner's along) and returns the child's exit code.
template <typename Body>
int in_child(Body body) {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(body());
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("the root's end closes every descriptor but vztrace's own") {
    // Exit code: 0 when right, else which check failed.
    const int result = in_child([] {
        std::vector<int> fds;
        for (int i = 0; i < 4; ++i) {
            int pair[2];
            if (::pipe(pair) != 0) return 90;
            fds.insert(fds.end(), {pair[0], pair[1]});
        }
        // Keep two in the middle, one of them given twice, and one below `first`.
        const std::array<int, 4> keep = {fds[3], fds[5], fds[3], 0};
        close_descriptors_from(fds[0], keep);
        for (std::size_t i = 0; i < fds.size(); ++i) {
            const bool kept = fds[i] == fds[3] || fds[i] == fds[5];
            if (is_open(fds[i]) != kept) return static_cast<int>(1 + i);
        }
        return is_open(0) ? 0 : 20;
    });
    CHECK(result == 0);
}

TEST_CASE("with nothing to keep, every descriptor from the first on is closed") {
    const int result = in_child([] {
        int pair[2];
        if (::pipe(pair) != 0) return 90;
        close_descriptors_from(pair[0]);
        return is_open(pair[0]) || is_open(pair[1]) ? 1 : 0;
    });
    CHECK(result == 0);
}
