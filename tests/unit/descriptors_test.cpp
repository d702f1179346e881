#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "support/process.hpp"
#include "tracer/session.hpp"

using vztrace::testing::in_forked_child;
using vztrace::tracer::close_descriptors_from;

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

}  // namespace

TEST_CASE("the root's end closes every descriptor from the first on") {
    const int result = in_forked_child([] {
        int pair[2];
        if (::pipe(pair) != 0) return 90;
        close_descriptors_from(pair[0]);
        return is_open(pair[0]) || is_open(pair[1]) ? 1 : 0;
    });
    CHECK(result == 0);
}
