#include "tracer/process_tree.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"

using vztrace::tracer::remove_parts_dir;
using vztrace::tracer::tree_end;
using vztrace::tracer::tree_ended_marker;
using vztrace::tracer::TreeEnd;

TEST_CASE("children that begin as the root removes the parts directory leave nothing there") {
    // Found by CI (3.11, 1 run of the e2e loop test's 4 in one CI run): a late child made its
    // stream after the root's removal had read the directory, the root's rmdir failed, and
    // the directory stayed in $TMPDIR with the child's stream in it. A child that came after
    // the removal had taken the marker, the directory still there, went on traced, its part
    // read by no one. Here a thread plays such children, one after another as fast as it
    // can, each making its stream and then looking for the tree's end as Session::open_stream
    // does, while the root removes the directory. Before the fix, in runs of 200 rounds, 35
    // rounds left the directory, and in 24 a child found the tree running.
    for (int round = 0; round < 200; ++round) {
        vztrace::testing::TempDir tmp;
        const std::string dir = tmp.file("vztrace-parts");
        REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
        for (int part = 0; part < 16; ++part)
            tmp.write("vztrace-parts/" + std::to_string(part), "");
        std::ofstream(tree_ended_marker(dir)).flush();  // the root's last look is over

        std::atomic<bool> started{false};
        std::atomic<bool> removed{false};
        std::atomic<int> found_running{0};
        std::atomic<int> open_failures{0};
        std::thread children([&] {
            for (int child = 0;; ++child) {
                const std::string stream = dir + "/late-" + std::to_string(child) + ".pftrace";
                const int fd =
                    ::open(stream.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                started = true;
                if (fd < 0) {
                    if (errno != ENOENT) ++open_failures;
                    return;  // the directory is gone: the child leaves untraced
                }
                ::close(fd);
                const TreeEnd end = tree_end(dir);
                if (end == TreeEnd::kRunning) ++found_running;
                if (end == TreeEnd::kRemoved || removed) return;
            }
        });
        while (!started) std::this_thread::yield();
        remove_parts_dir(dir);
        removed = true;
        children.join();
        INFO("round " << round);
        CHECK(found_running == 0);
        CHECK(open_failures == 0);
        REQUIRE(vztrace::testing::names_in(tmp.path()).empty());
    }
}
