#include "tracer/root_registry.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/process.hpp"

using vztrace::testing::in_forked_child;
using vztrace::tracer::ancestor_root_environment;
using vztrace::tracer::default_registry_dir;
using vztrace::tracer::register_root;
using vztrace::tracer::root_registered;
using vztrace::tracer::unregister_root;

namespace {

namespace fs = std::filesystem;

// A registry of the test's own: a 0700 directory inside a temporary one.
struct Registry {
    vztrace::testing::TempDir parent;
    std::string path = parent.file("roots");
    Registry() { ::mkdir(path.c_str(), 0700); }
    std::size_t entries() const {
        return static_cast<std::size_t>(
            std::distance(fs::directory_iterator(path), fs::directory_iterator()));
    }
};

bool holds(const std::optional<std::vector<std::string>>& variables, const std::string& one) {
    return variables && std::find(variables->begin(), variables->end(), one) != variables->end();
}

// The start time /proc gives `pid` (field 22 of its stat).
std::string start_time(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    std::string rest = line.substr(line.rfind(')') + 2);
    for (int field = 3; field < 22; ++field) rest = rest.substr(rest.find(' ') + 1);
    return rest.substr(0, rest.find(' '));
}

}  // namespace

TEST_CASE("a root's descendants find its VZTRACE_ variables through its entry") {
    Registry registry;
    // Registered in a child, which plays the root: the test process keeps its environment.
    const int result = in_forked_child([&] {
        ::setenv("VZTRACE_ROOT_PID", std::to_string(::getpid()).c_str(), 1);
        ::setenv("VZTRACE_OUTPUT", "/somewhere/trace.pftrace", 1);
        register_root(registry.path);
        if (registry.entries() != 1) return 1;
        // Its own entry is what its next image finds when it execs vztrace with an
        // environment of its own (its ancestors are not registered).
        if (!holds(ancestor_root_environment(registry.path, ::getpid()),
                   "VZTRACE_OUTPUT=/somewhere/trace.pftrace")) {
            return 2;
        }
        const int child = in_forked_child([&] {
            const auto found = ancestor_root_environment(registry.path, ::getpid());
            if (!holds(found, "VZTRACE_OUTPUT=/somewhere/trace.pftrace")) return 3;
            // A grandchild, through a process that is not a root.
            const int grandchild = in_forked_child([&] {
                const auto again = ancestor_root_environment(registry.path, ::getpid());
                return holds(again, "VZTRACE_OUTPUT=/somewhere/trace.pftrace") ? 0 : 4;
            });
            if (grandchild != 0) return grandchild;
            unregister_root();  // the root's entry is not a forked child's to remove
            return registry.entries() == 1 ? 0 : 5;
        });
        if (child != 0) return child;
        unregister_root();
        return registry.entries() == 0 ? 0 : 6;
    });
    CHECK(result == 0);
}

TEST_CASE("each pid namespace has a registry of its own") {
    // A root's pid means nothing in another pid namespace: a vztrace started there (a
    // container sharing /tmp) took its entry for a gone root's and removed the parts
    // directory of a root still running (hunt AU).
    struct stat pid_namespace {};
    REQUIRE(::stat("/proc/self/ns/pid", &pid_namespace) == 0);
    CHECK(default_registry_dir() == "/tmp/vztrace-roots-" + std::to_string(::geteuid()) + "-" +
                                        std::to_string(pid_namespace.st_ino));
}

TEST_CASE("a root is registered until it unregisters, as its children can tell") {
    Registry registry;
    const int result = in_forked_child([&] {
        if (root_registered(registry.path, ::getpid())) return 1;
        register_root(registry.path);
        if (!root_registered(registry.path, ::getpid())) return 2;
        unregister_root();
        return root_registered(registry.path, ::getpid()) ? 3 : 0;
    });
    CHECK(result == 0);
}

TEST_CASE("an entry of a process that is gone, or of a reused pid, is ignored and removed") {
    Registry registry;
    // The test's own parent, registered with a start time it does not have (its pid reused),
    // and a pid no process has.
    const std::string parent = std::to_string(::getppid());
    const std::string wrong_start = std::to_string(std::stoull(start_time(::getppid())) + 1);
    std::ofstream(registry.path + "/" + parent + "-" + wrong_start) << "VZTRACE_OUTPUT=/x";
    std::ofstream(registry.path + "/2147483000-1") << "VZTRACE_OUTPUT=/y";
    CHECK_FALSE(ancestor_root_environment(registry.path, ::getpid()));
    CHECK(registry.entries() == 0);
    // With the right start time, the same parent is found.
    std::ofstream(registry.path + "/" + parent + "-" + start_time(::getppid()))
        << std::string("VZTRACE_OUTPUT=/z\0OTHER=1\0", 26);
    const auto found = ancestor_root_environment(registry.path, ::getpid());
    REQUIRE(found);
    CHECK(*found == std::vector<std::string>{"VZTRACE_OUTPUT=/z"});  // nothing but VZTRACE_*
}

// A root killed, or one that exec'd a program other than vztrace, left its parts directory
// in /tmp, as large as a trace; the next vztrace removes it with the root's entry.
TEST_CASE("the parts directory of a root that is gone is removed with its entry, and no other") {
    Registry registry;
    const std::string dead = "2147483000";
    const std::string parts = registry.parent.file("vztrace-" + dead + "-abc123");
    const std::string other = registry.parent.file("vztrace-12-abc123");  // another root's name
    fs::create_directories(parts + "/inner");
    fs::create_directories(other);
    std::ofstream(parts + "/1-2.pftrace") << "part";
    const std::string nul(1, '\0');
    std::ofstream(registry.path + "/" + dead + "-1")
        << "VZTRACE_OUTPUT=/y" + nul + "VZTRACE_PARTS_DIR=" + parts + nul;
    std::ofstream(registry.path + "/2147483001-1") << "VZTRACE_PARTS_DIR=" + other + nul;
    CHECK_FALSE(ancestor_root_environment(registry.path, ::getpid()));
    CHECK(registry.entries() == 0);
    CHECK_FALSE(fs::exists(parts));
    CHECK(fs::exists(other));  // not named for the root that left the entry
}

TEST_CASE("an entry left half written by a root that is gone is removed; a live one's is not") {
    // Found by hunt Z: a root killed between writing its entry and renaming it into place
    // left "PID-START.new", which every later scan passed over: such files piled up.
    Registry registry;
    const std::string parts = registry.parent.file("vztrace-2147483000-abc123");
    fs::create_directories(parts);
    const std::string nul(1, '\0');
    std::ofstream(registry.path + "/2147483000-1.new") << "VZTRACE_PARTS_DIR=" + parts + nul;
    // The test's own parent is alive, writing its entry: left as it is, and not a root yet.
    const std::string alive = std::to_string(::getppid()) + "-" + start_time(::getppid()) + ".new";
    std::ofstream(registry.path + "/" + alive) << "VZTRACE_OUTPUT=/w";
    CHECK_FALSE(ancestor_root_environment(registry.path, ::getpid()));
    CHECK_FALSE(fs::exists(registry.path + "/2147483000-1.new"));
    CHECK(fs::exists(registry.path + "/" + alive));
    CHECK(registry.entries() == 1);
    // What a half-written entry names is not trusted: its directory stays.
    CHECK(fs::exists(parts));
}

TEST_CASE("a registry directory others can write is neither read nor written") {
    Registry registry;
    std::ofstream(registry.path + "/" + std::to_string(::getppid()) + "-" + start_time(::getppid()))
        << "VZTRACE_OUTPUT=/x";
    ::chmod(registry.path.c_str(), 0777);
    CHECK_FALSE(ancestor_root_environment(registry.path, ::getpid()));
    const int result = in_forked_child([&] {
        ::setenv("VZTRACE_ROOT_PID", std::to_string(::getpid()).c_str(), 1);
        register_root(registry.path);
        return registry.entries() == 1 ? 0 : 1;
    });
    CHECK(result == 0);
}
