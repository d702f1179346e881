#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

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

TEST_CASE("the root's end closes every descriptor from the first on") {
    const int result = in_child([] {
        int pair[2];
        if (::pipe(pair) != 0) return 90;
        close_descriptors_from(pair[0]);
        return is_open(pair[0]) || is_open(pair[1]) ? 1 : 0;
    });
    CHECK(result == 0);
}
