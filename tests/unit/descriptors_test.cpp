#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>

#include "support/process.hpp"
#include "tracer/session.hpp"

using vztrace::testing::in_forked_child;
using vztrace::tracer::release_pipes_and_sockets;

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

mode_t type_of(int fd) {
    struct stat st {};
    return ::fstat(fd, &st) == 0 ? st.st_mode & S_IFMT : 0;
}

ino_t inode_of(int fd) {
    struct stat st {};
    return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

}  // namespace

TEST_CASE("the root's end lets the program's pipes and sockets go, keeping their numbers taken") {
    const int result = in_forked_child([] {
        int pipe_ends[2];
        int sockets[2];
        int kept[2];
        if (::pipe(pipe_ends) != 0 || ::socketpair(AF_UNIX, SOCK_STREAM, 0, sockets) != 0 ||
            ::pipe(kept) != 0) {
            return 90;
        }
        std::FILE* file = std::tmpfile();
        if (file == nullptr) return 91;
        const int file_fd = ::fileno(file);
        const ino_t file_inode = inode_of(file_fd);
        release_pipes_and_sockets(kept[1]);
        // Let go, but the numbers are still taken (by /dev/null): no file opened later
        // gets them.
        for (const int fd : {pipe_ends[0], pipe_ends[1], sockets[0], sockets[1], kept[0]}) {
            if (!is_open(fd)) return 1;
            if (type_of(fd) != S_IFCHR) return 2;
        }
        char byte = 0;
        if (::read(pipe_ends[0], &byte, 1) != 0) return 3;  // at its end at once
        if (type_of(kept[1]) != S_IFIFO) return 4;          // the one to keep
        if (inode_of(file_fd) != file_inode) return 5;      // files stay as they were
        const int next = ::open("/dev/zero", O_RDONLY);
        for (const int fd : {pipe_ends[0], pipe_ends[1], sockets[0], sockets[1], kept[0]}) {
            if (next == fd) return 6;
        }
        return 0;
    });
    CHECK(result == 0);
}
