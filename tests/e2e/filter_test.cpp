// The recording controls that leave calls out (--include-files, --exclude-files,
// --ignore-frozen, --max-stack-depth, --min-duration, --no-startup): exact counts against
// the unfiltered trace of the same deterministic program, nesting intact, in the root and
// in a child started with sys.executable.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <set>

#include "e2e/e2e.hpp"

using namespace vztrace::e2e;
using vztrace::testing::load_trace;
using vztrace::testing::RunOptions;
using vztrace::testing::TempDir;
using vztrace::testing::Trace;
using vztrace::testing::TraceEvent;

namespace {

const std::string kMain = script("filters/main.py");
const std::string kLib = script("filters/lib");

// The program's own functions, as the trace names them without their location.
const std::set<std::string> kProgram = {"top",  "mid",    "leaf",      "callback", "step",
                                        "work", "thrown", "long_call", "busy"};

std::string base_name(const std::string& name) { return name.substr(0, name.find(" (")); }

struct Run {
    Trace trace;
    std::string out;
};

Run traced(std::vector<std::string> options) {
    TempDir dir;
    const std::string path = dir.file(vztrace::testing::trace_name("trace"));
    std::vector<std::string> args = {"--quiet", "-o", path};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back(kMain);
    const auto result = run_vztrace(args);
    INFO(result.err);
    REQUIRE(result.status() == 0);
    CHECK(result.err.empty());
    return Run{load_trace(path), result.out};
}

// {pid: {function: calls}} of the program's functions.
std::map<std::int64_t, std::map<std::string, std::size_t>> program_counts(const Trace& trace) {
    std::map<std::int64_t, std::map<std::string, std::size_t>> counts;
    for (const TraceEvent& slice : trace.slices) {
        const std::string name = base_name(slice.name);
        if (kProgram.count(name) != 0) ++counts[slice.pid][name];
    }
    return counts;
}

// Each slice's depth on its thread (1: outermost), by containment.
std::vector<int> depths(const Trace& trace) {
    std::vector<std::size_t> order(trace.slices.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    const auto& s = trace.slices;
    std::sort(order.begin(), order.end(), [&s](std::size_t a, std::size_t b) {
        if (s[a].pid != s[b].pid) return s[a].pid < s[b].pid;
        if (s[a].tid != s[b].tid) return s[a].tid < s[b].tid;
        if (s[a].ts_ns != s[b].ts_ns) return s[a].ts_ns < s[b].ts_ns;
        return s[a].dur_ns > s[b].dur_ns;
    });
    std::vector<int> result(s.size(), 0);
    std::vector<std::size_t> open;
    for (const std::size_t i : order) {
        while (!open.empty() && (s[open.back()].pid != s[i].pid || s[open.back()].tid != s[i].tid ||
                                 s[open.back()].end_ns() <= s[i].ts_ns)) {
            open.pop_back();
        }
        open.push_back(i);
        result[i] = static_cast<int>(open.size());
    }
    return result;
}

// The unfiltered trace's counts, with the functions `left_out` set to zero.
std::map<std::string, std::size_t> expected_without(const std::set<std::string>& left_out) {
    // The program is deterministic: these are the counts of one run (checked below).
    std::map<std::string, std::size_t> counts = {{"top", 1},      {"mid", 8},  {"leaf", 20},
                                                 {"callback", 4}, {"step", 4}, {"work", 1},
                                                 {"thrown", 3},   {"busy", 1}, {"long_call", 1}};
    for (const std::string& name : left_out) counts.erase(name);
    return counts;
}

}  // namespace

TEST_CASE("filter: unfiltered, the filters' program has the counts the other tests expect") {
    const Run run = traced({});
    const auto counts = program_counts(run.trace);
    REQUIRE(counts.size() == 2);  // the root and its child
    for (const auto& [pid, functions] : counts) CHECK(functions == expected_without({}));
    CHECK(run.trace.nesting_problem().empty());
}

TEST_CASE(
    "filter: --exclude-files leaves a directory's functions out; what they call stays, nested") {
    for (const std::string& pattern : {kLib, kLib + "/", std::string("*/filters/lib/*")}) {
        INFO(pattern);
        const Run run = traced({"--exclude-files", pattern});
        const auto counts = program_counts(run.trace);
        REQUIRE(counts.size() == 2);
        for (const auto& [pid, functions] : counts)
            CHECK(functions == expected_without({"step", "work"}));
        CHECK(run.trace.nesting_problem().empty());
        // The callbacks lib made nest directly under top, the nearest call kept.
        for (const TraceEvent& callback : run.trace.named("callback")) {
            const auto tops = run.trace.named("top");
            CHECK(std::any_of(tops.begin(), tops.end(), [&](const TraceEvent& top) {
                return top.pid == callback.pid && top.ts_ns <= callback.ts_ns &&
                       callback.end_ns() <= top.end_ns();
            }));
        }
    }
}

TEST_CASE("filter: --include-files keeps only the functions of the files named") {
    const Run run = traced({"--include-files", kMain, "--include_files", kLib + "/helper.py"});
    for (const auto& [pid, functions] : program_counts(run.trace))
        CHECK(functions == expected_without({}));
    const Run main_only = traced({"--include-files", kMain});
    const auto counts = program_counts(main_only.trace);
    REQUIRE(counts.size() == 2);
    for (const auto& [pid, functions] : counts)
        CHECK(functions == expected_without({"step", "work"}));
    for (const TraceEvent& slice : main_only.trace.slices) {  // nothing of the stdlib's
        INFO(slice.name);
        const bool python = slice.name.find(".py:") != std::string::npos;
        CHECK((!python || slice.name.find(kMain) != std::string::npos));
    }
}

// A path that is not UTF-8 is matched as the system names it. Before, the file's name was
// compared in the trace's UTF-8 (the byte replaced), and matched no pattern.
TEST_CASE("filter: --include-files and --exclude-files match a path that is not UTF-8") {
    TempDir dir;
    const std::string odd = dir.file("d\xfd");
    std::filesystem::create_directories(odd);
    std::filesystem::copy_file(script("fib5.py"), odd + "/pr\xffog.py");
    const std::string program = odd + "/pr\xffog.py";
    for (const std::string& pattern : {program, odd, dir.file("d*")}) {
        const std::string path = dir.file(vztrace::testing::trace_name("in"));
        REQUIRE(
            run_vztrace({"--quiet", "--include-files", pattern, "-o", path, program}).status() ==
            0);
        const Trace included = load_trace(path);
        INFO(pattern);
        CHECK(included.count_prefix("fib (") == 15);
        REQUIRE(
            run_vztrace({"--quiet", "--exclude-files", pattern, "-o", path, program}).status() ==
            0);
        CHECK(load_trace(path).count_prefix("fib (") == 0);
    }
}

TEST_CASE("filter: a module imported through a path with .. is matched by where it is") {
    // Its co_filename keeps sys.path's "app/../lib", and the patterns are lexically normal:
    // "lib" matched nothing of it, "app" all of it.
    TempDir dir;
    std::filesystem::create_directories(dir.file("app"));
    std::filesystem::create_directories(dir.file("lib"));
    dir.write("lib/helper.py", "def work():\n    return 1\n");
    dir.write("app/main.py",
              "import os, sys\n"
              "sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'lib'))\n"
              "import helper\n"
              "def run():\n    return helper.work()\n"
              "print(run())\n");
    const auto counts = [&](const std::vector<std::string>& options) {
        const std::string path = dir.file(vztrace::testing::trace_name("t"));
        std::vector<std::string> args = {"--quiet", "-o", path};
        args.insert(args.end(), options.begin(), options.end());
        args.push_back(dir.file("app/main.py"));
        const auto result = run_vztrace(args);
        INFO(result.err);
        REQUIRE(result.status() == 0);
        CHECK(result.out == "1\n");
        const Trace trace = load_trace(path);
        return std::pair{trace.count_prefix("work ("), trace.count_prefix("run (")};
    };
    CHECK(counts({"--include-files", dir.file("lib")}) ==
          std::pair<std::size_t, std::size_t>{1, 0});
    CHECK(counts({"--include-files", dir.file("app")}) ==
          std::pair<std::size_t, std::size_t>{0, 1});
    CHECK(counts({"--include-files", dir.file("app/../lib/")}) ==
          std::pair<std::size_t, std::size_t>{1, 0});
    CHECK(counts({"--exclude-files", dir.file("lib")}) ==
          std::pair<std::size_t, std::size_t>{0, 1});
}

TEST_CASE("filter: patterns taken from a directory whose name has glob characters") {
    // Joined to "br[1]*?", a relative pattern was a glob that matched nothing of it: "lib"
    // kept nothing and left nothing out, and "$PWD/lib" too (hunt AS).
    TempDir top;
    const std::string dir = top.file("br[1]*?");
    std::filesystem::create_directories(dir + "/app");
    std::filesystem::create_directories(dir + "/lib");
    top.write("br[1]*?/lib/helper.py", "def work():\n    return 1\n");
    top.write("br[1]*?/app/main.py",
              "import os, sys\n"
              "sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'lib'))\n"
              "import helper\n"
              "def run():\n    return helper.work()\n"
              "print(run())\n");
    top.write("br[1]*?/vztrace.toml", "[tool.vztrace]\ninclude_files = [\"lib\"]\n");
    const auto counts = [&](const std::vector<std::string>& options) {
        const std::string path = top.file(vztrace::testing::trace_name("t"));
        std::vector<std::string> args = {"--quiet", "-o", path};
        args.insert(args.end(), options.begin(), options.end());
        args.push_back("app/main.py");
        RunOptions run;
        run.cwd = dir;
        const auto result = run_vztrace(args, run);
        INFO(result.err);
        REQUIRE(result.status() == 0);
        CHECK(result.out == "1\n");
        const Trace trace = load_trace(path);
        return std::pair{trace.count_prefix("work ("), trace.count_prefix("run (")};
    };
    using Counts = std::pair<std::size_t, std::size_t>;
    for (const std::string& lib : {std::string("lib"), std::string("lib/"), std::string("lib/*"),
                                   std::string("l?b"), dir + "/lib"}) {
        INFO(lib);
        CHECK(counts({"--include-files", lib}) == Counts{1, 0});
        CHECK(counts({"--exclude-files", lib}) == Counts{0, 1});
    }
    CHECK(counts({"--include-files", "app"}) == Counts{0, 1});
    CHECK(counts({"--include-files", "ap"}) == Counts{0, 0});
    CHECK(counts({"--config", dir + "/vztrace.toml"}) == Counts{1, 0});
}

TEST_CASE("filter: code compiled from a relative file name is in that file after a chdir") {
    // Its name took the working directory at its first call: "task (<cwd>/work/tasks.py:1)",
    // a file that does not exist, left out by --include-files tasks.py (hunt AS).
    TempDir dir;
    std::filesystem::create_directories(dir.file("work"));
    dir.write("tasks.py", "def task():\n    return 1\n");
    dir.write("t\xc3\xa4sks.py", "def other():\n    return 2\n");
    dir.write(
        "main.py",
        "import os, runpy\n"
        "tasks = runpy.run_path('tasks.py')\n"
        "namespace = {}\n"
        "exec(compile(open('t\xc3\xa4sks.py').read(), 't\xc3\xa4sks.py', 'exec'), namespace)\n"
        "os.chdir('work')\n"
        "print(tasks['task'](), namespace['other']())\n");
    for (const std::vector<std::string>& options :
         {std::vector<std::string>{}, {"--include-files", "tasks.py:t\xc3\xa4sks.py"}}) {
        const std::string path = dir.file(vztrace::testing::trace_name("t"));
        std::vector<std::string> args = {"--quiet", "-o", path};
        args.insert(args.end(), options.begin(), options.end());
        args.push_back("main.py");
        RunOptions run;
        run.cwd = dir.path();
        const auto result = run_vztrace(args, run);
        INFO(result.err);
        REQUIRE(result.status() == 0);
        CHECK(result.out == "1 2\n");
        const Trace trace = load_trace(path);
        CHECK(trace.count("task (" + dir.file("tasks.py") + ":1)") == 1);
        CHECK(trace.count("other (" + dir.file("t\xc3\xa4sks.py") + ":1)") == 1);
    }
}

TEST_CASE("filter: a generator thrown into in a file left out behaves as under python") {
    // PY_THROW cannot be disabled: asking sys.monitoring to raised ValueError in the program.
    // The --log-* options' callbacks still asked (3.12, 3.13): the program died of it, and
    // with --include-files python's own start-up printed it (a generator of getpath's
    // closed), after which no generator's throw() was recorded.
    TempDir dir;
    const std::string unfiltered = dir.file(vztrace::testing::trace_name("trace"));
    const auto pair = run_both({kMain}, {}, unfiltered);
    const std::size_t thrown = load_trace(unfiltered).count_prefix("thrown (");
    CHECK(thrown >= 4);  // next() and throw() at least, in each process
    const std::vector<std::vector<std::string>> option_sets = {
        {}, {"--log-exception"}, {"--log-func-args"}, {"--log-func-retval"}, {"--log-audit"}};
    for (const auto& options : option_sets) {
        for (const char* filter : {"--exclude-files", "--include-files"}) {
            std::vector<std::string> args = options;
            const std::string path = dir.file(vztrace::testing::trace_name("f"));
            args.insert(args.end(), {"--quiet", filter, kMain, "-o", path, kMain});
            // Each set in turn, not a section each: sections would run the unfiltered pair
            // again for every one.
            INFO(filter << " " << (options.empty() ? "" : options[0]));
            const auto filtered = run_vztrace(args);
            CHECK(filtered.out == pair.python.out);
            CHECK(filtered.err.empty());
            CHECK(filtered.status() == 0);
            if (std::string(filter) == "--include-files") {
                // thrown() resumed by throw() (PY_THROW) as often as unfiltered.
                CHECK(load_trace(path).count_prefix("thrown (") == thrown);
            }
        }
    }
}

TEST_CASE("filter: --ignore-frozen leaves importlib's frozen frames out, and nothing else") {
    const Run run = traced({"--ignore_frozen"});
    for (const TraceEvent& slice : run.trace.slices) {
        INFO(slice.name);
        CHECK(slice.name.find("<frozen ") == std::string::npos);
    }
    for (const auto& [pid, functions] : program_counts(run.trace))
        CHECK(functions == expected_without({}));
    CHECK(traced({}).trace.count_prefix("_find_and_load (<frozen importlib._bootstrap>") > 0);
}

TEST_CASE("filter: --max-stack-depth keeps calls down to that depth, in every process") {
    const Run full = traced({});
    const std::vector<int> full_depths = depths(full.trace);
    for (const int limit : {1, 3, 5}) {
        INFO("limit " << limit);
        const Run run = traced({"--max-stack-depth", std::to_string(limit)});
        const std::vector<int> got = depths(run.trace);
        CHECK(*std::max_element(got.begin(), got.end()) <= limit);
        // Per process, the program's calls at depth <= limit are exactly those unfiltered.
        const auto shallow = [limit](const Trace& trace, const std::vector<int>& depth) {
            std::map<std::int64_t, std::map<std::string, std::size_t>> counts;
            for (std::size_t i = 0; i < trace.slices.size(); ++i) {
                const std::string name = base_name(trace.slices[i].name);
                if (depth[i] <= limit && kProgram.count(name) != 0)
                    ++counts[trace.slices[i].pid][name];
            }
            std::vector<std::map<std::string, std::size_t>> result;
            for (auto& [pid, functions] : counts) result.push_back(functions);
            return result;
        };
        CHECK(shallow(run.trace, got) == shallow(full.trace, full_depths));
        CHECK(run.trace.nesting_problem().empty());
    }
}

TEST_CASE("filter: --min-duration leaves short calls out and keeps the long ones around them") {
    const Run run = traced({"--min-duration", "5ms"});
    for (const TraceEvent& slice : run.trace.slices) {
        INFO(slice.name);
        CHECK(slice.dur_ns >= 5'000'000);
    }
    // busy() runs 20 ms, and long_call and top around it longer still; leaf and mid take
    // microseconds.
    for (const auto& [pid, functions] : program_counts(run.trace)) {
        CHECK(functions ==
              std::map<std::string, std::size_t>{{"top", 1}, {"long_call", 1}, {"busy", 1}});
    }
    CHECK(run.trace.nesting_problem().empty());
    // VizTracer's unit: a bare number is microseconds.
    const Run micros = traced({"--min_duration", "5000"});
    for (const auto& [pid, functions] : program_counts(micros.trace))
        CHECK(functions.count("leaf") == 0);
}

TEST_CASE("filter: --no-startup records from the program's first line, a script's or a module's") {
    // What python does to find the program came first: zipimporter.__init__, the path
    // hooks and FileLoader.__init__ for a script; runpy's imports (about 1,500 calls) for
    // -m.
    const std::vector<std::pair<std::vector<std::string>, std::string>> programs = {
        {{script("fib5.py")}, "<module> (" + script("fib5.py") + ":1)"},
        {{"-m", "mypkg", "arg"}, "<module> (" + script("mypkg/__main__.py") + ":1)"},
        // 3.13 imports linecache for -c's text first (hunt AF: 249 calls recorded).
        {{"-c", "def f():\n    return 1\nf()"}, "<module> (<string>:1)"}};
    for (const auto& [program, first] : programs) {
        DYNAMIC_SECTION(program[0]) {
            TempDir dir;
            const std::string path = dir.file(vztrace::testing::trace_name("trace"));
            std::vector<std::string> args = {"--quiet", "--no-startup", "-o", path};
            args.insert(args.end(), program.begin(), program.end());
            vztrace::testing::RunOptions options;
            options.cwd = kScripts;
            const auto result = run_vztrace(args, options);
            INFO(result.err);
            REQUIRE(result.status() == 0);
            const Trace trace = load_trace(path);
            REQUIRE_FALSE(trace.slices.empty());
            const auto earliest = std::min_element(
                trace.slices.begin(), trace.slices.end(), [](const auto& a, const auto& b) {
                    return a.ts_ns != b.ts_ns ? a.ts_ns < b.ts_ns : a.dur_ns > b.dur_ns;
                });
            CHECK(earliest->name == first);
            for (const TraceEvent& slice : trace.slices) {
                INFO(slice.name);
                CHECK(slice.ts_ns >= earliest->ts_ns);
                CHECK(slice.name.find("zipimporter") == std::string::npos);
                CHECK(slice.name.find("FileLoader.__init__") == std::string::npos);
            }
        }
    }
}

TEST_CASE("filter: --no-startup keeps the program's calls on a thread that start-up started") {
    // The thread's first call began in the start-up, and was left out with everything
    // under it as vztrace.pause() leaves calls out: 1,000 calls made after the program's
    // first line, and the thread, were in no trace.
    TempDir dir;
    dir.write("site/sitecustomize.py",
              "import threading\n"
              "go = threading.Event()\n"
              "def poll(i):\n"
              "    return i\n"
              "def loop():\n"
              "    go.wait()\n"
              "    for i in range(1000):\n"
              "        poll(i)\n"
              "poller = threading.Thread(target=loop, name='poller')\n"
              "poller.start()\n");
    vztrace::testing::RunOptions options;
    options.env["PYTHONPATH"] = dir.file("site");
    const std::string site = dir.file("site/sitecustomize.py");
    const std::string path = dir.file(vztrace::testing::trace_name("trace"));
    const auto result =
        run_vztrace({"--quiet", "--no-startup", "-o", path, "-c",
                     "import sitecustomize\nsitecustomize.go.set()\nsitecustomize.poller.join()\n"},
                    options);
    INFO(result.err);
    REQUIRE(result.status() == 0);
    const Trace trace = load_trace(path);
    const std::string poll = "poll (" + site + ":3)";
    CHECK(trace.count(poll) == 1000);
    // Not the calls begun in the start-up: the thread's run, loop, Event.wait.
    CHECK(trace.count("loop (" + site + ":5)") == 0);
    CHECK(trace.count_prefix("python start-up") == 0);
    CHECK(trace.nesting_problem().empty());
    for (const TraceEvent& slice : trace.slices) {
        if (slice.name == poll) CHECK(trace.threads.at(slice.tid) == "poller");
    }
}

TEST_CASE(
    "filter: --no-startup leaves the interpreter's start-up out and keeps every program call") {
    const Run run = traced({"--no-startup"});
    CHECK(run.trace.count_prefix("python start-up") == 0);
    CHECK(traced({}).trace.count_prefix("python start-up") == 2);
    for (const auto& [pid, functions] : program_counts(run.trace))
        CHECK(functions == expected_without({}));
    // Nothing of site's: its module and functions run in the start-up only.
    CHECK(run.trace.count_prefix("<module> (" + std::string("/")) > 0);
    for (const TraceEvent& slice : run.trace.slices) {
        INFO(slice.name);
        CHECK(slice.name.find("/site.py:") == std::string::npos);
    }
}
