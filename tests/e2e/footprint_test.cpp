// What a traced process carries of vztrace's beyond python: every shared library is loaded
// and relocated at each start of a traced program, so vztrace links its libraries in or
// keeps them in modules only some subcommands load (bench/README.md, "Start-up").
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>

#include "e2e/e2e.hpp"

using namespace vztrace::e2e;
using vztrace::testing::TempDir;

TEST_CASE("a traced program's process maps only python's files and vztrace's own") {
    // Before they moved out: view's server (cpp-httplib, with OpenSSL and brotli) cost
    // about 5 ms of each start-up; simdjson, fmt, zlib, libdeflate and libstdc++ about 1.5.
    // vztrace's own: its executable, and the shared counters of its private directory.
    TempDir dir;
    const std::string mapped =
        "print('\\n'.join(sorted({line.split()[5] for line in open('/proc/self/maps')\n"
        "                           if len(line.split()) > 5 and line.split()[5][0] == '/'})))";
    const auto python = vztrace::testing::run_process({kPython, "-c", mapped});
    REQUIRE(python.status() == 0);
    const auto result =
        run_vztrace({"--quiet", "-o", dir.file(vztrace::testing::trace_name("t")), "-c", mapped});
    REQUIRE(result.status() == 0);
    CHECK(contains(result.out, "/libpython3."));
    const std::string own = std::filesystem::canonical(kVztrace).string();
    std::istringstream lines(result.out);
    for (std::string path; std::getline(lines, path);) {
        const std::filesystem::path file(path);
        if (path == own || file.parent_path().filename().string().rfind("vztrace-", 0) == 0)
            continue;
        // The unwinder stays the system's libgcc_s, the one glibc unwinds a thread that
        // pthread_exit ends with (launcher/CMakeLists.txt).
        if (contains(path, "/libgcc_s.so")) continue;
        // A python whose executable has libpython linked in (Debian's own) maps no
        // libpython.so: vztrace embeds the shared one of the same CPython.
        if (contains(path, "/libpython3.") && !contains(python.out, "/libpython3.")) continue;
        // The C++ runtime is linked in except under the sanitizers, whose runtimes need it.
        if (!static_cxx_runtime()) {
            bool runtime = false;
            for (const char* name : {"libstdc++", "libgcc_s", "libasan", "libubsan"})
                runtime = runtime || contains(path, name);
            if (runtime) continue;
        }
        INFO(path);
        CHECK(contains(python.out, path + "\n"));
    }
}

TEST_CASE("a C++ extension of the program's runs as under python on the system's libstdc++") {
    // vztrace's own C++ runtime is linked in and unexported: the extension's exceptions,
    // maps and streams are libstdc++.so's, which it loads as under python.
    TempDir dir;
    dir.write("uses_cxx.py",
              "import sys\n"
              "sys.path.insert(0, sys.argv[1])\n"
              "import cxxext\n"
              "print(cxxext.roundtrip('abba'))\n"
              "print(any('libstdc++' in line for line in open('/proc/self/maps')))\n");
    const std::string program = dir.file("uses_cxx.py");
    const auto python = vztrace::testing::run_process({kPython, program, kExtensions});
    REQUIRE(python.status() == 0);
    const auto run = traced({}, {program, kExtensions}, dir);
    CHECK(run.result.out == python.out);
    CHECK(run.result.out == "refused abba: a=2 b=2\nTrue\n");
    CHECK(run.trace.count("cxxext.roundtrip") == 1);
    CHECK(run.trace.nesting_problem().empty());
}

TEST_CASE("report of a JSON trace without vztrace's JSON module says so in one line") {
    // simdjson is in a module of its own; a Perfetto trace needs none.
    TempDir dir;
    const std::string copy = lone_copy(dir);
    const std::string json = dir.file("t.json");
    const std::string perfetto = dir.file("t.pftrace");
    for (const std::string& trace : {json, perfetto}) {
        REQUIRE(run_vztrace({"--quiet", "-o", trace, script("fib5.py")}).status() == 0);
    }
    const auto result = vztrace::testing::run_process({copy, "report", json});
    INFO(result.err);
    CHECK(result.status() == 2);
    CHECK(contains(result.err, "cannot read JSON traces: vztrace-json-events.so is missing"));
    CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
    CHECK(result.out.empty());
    const auto read = vztrace::testing::run_process({copy, "report", perfetto});
    CHECK(read.err.empty());
    CHECK(read.status() == 0);
    CHECK(contains(read.out, perfetto + " (perfetto): "));
    // The built executable finds its module and reads the same JSON trace.
    CHECK(run_vztrace({"report", json}).status() == 0);
}
