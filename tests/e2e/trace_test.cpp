// What vztrace records: every call, properly nested, named as VizTracer names them, with
// the start-up kept apart, on every exit path.
#include <simdjson.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <map>
#include <set>

#include "e2e/e2e.hpp"

using namespace vztrace::e2e;
using vztrace::testing::load_trace;
using vztrace::testing::RunOptions;
using vztrace::testing::TempDir;
using vztrace::testing::Trace;

namespace {

struct TracedRun {
    vztrace::testing::ProcessResult result;
    Trace trace;
};

TracedRun trace_of(const std::vector<std::string>& args, const TempDir& dir,
                   const RunOptions& options = {}) {
    std::vector<std::string> all = {"--quiet", "-o",
                                    dir.file(vztrace::testing::trace_name("trace"))};
    all.insert(all.end(), args.begin(), args.end());
    TracedRun run{run_vztrace(all, options), {}};
    INFO(run.result.err);
    REQUIRE(vztrace::testing::file_exists(dir.file(vztrace::testing::trace_name("trace"))));
    run.trace = load_trace(dir.file(vztrace::testing::trace_name("trace")));
    return run;
}

std::string py_name(const std::string& qualname, const std::string& file, int line) {
    return qualname + " (" + file + ":" + std::to_string(line) + ")";
}

// {name: count} of the reference run under python with a sys.setprofile counter.
std::map<std::string, std::size_t> reference_counts(const std::string& program) {
    TempDir dir;
    RunOptions options;
    options.env["REFCOUNT_OUT"] = dir.file("counts.json");
    const auto result =
        vztrace::testing::run_process({kPython, script("refcount.py"), program}, options);
    INFO(result.err);
    REQUIRE(result.status() == 0);
    simdjson::dom::parser parser;
    std::map<std::string, std::size_t> counts;
    for (auto [key, value] : parser.load(dir.file("counts.json")).get_object()) {
        counts[std::string(key)] = static_cast<std::size_t>(std::int64_t(value));
    }
    return counts;
}

// {name: count} of the program's own functions, and of the C functions its code calls
// directly (the reference counts those the same way; start-up calls are not the program's).
std::map<std::string, std::size_t> calls_from(const Trace& trace, const std::string& program) {
    std::map<std::string, std::size_t> counts;
    const auto own = [&](const std::string& name) {
        return name.find(program) != std::string::npos;
    };
    std::map<std::int64_t, std::vector<vztrace::testing::TraceEvent>> threads;
    for (const auto& e : trace.slices) threads[e.tid].push_back(e);
    for (auto& [tid, events] : threads) {
        std::stable_sort(events.begin(), events.end(), [](const auto& a, const auto& b) {
            return a.ts_ns != b.ts_ns ? a.ts_ns < b.ts_ns : a.dur_ns > b.dur_ns;
        });
        std::vector<const vztrace::testing::TraceEvent*> open;
        for (const auto& e : events) {
            while (!open.empty() && open.back()->end_ns() <= e.ts_ns &&
                   !(open.back()->dur_ns == 0 && open.back()->ts_ns == e.ts_ns)) {
                open.pop_back();
            }
            const bool is_c = e.name.find(" (") == std::string::npos;
            if (own(e.name) || (is_c && !open.empty() && own(open.back()->name))) counts[e.name]++;
            open.push_back(&e);
        }
    }
    return counts;
}

}  // namespace

TEST_CASE("fib(5) records exactly 15 calls of fib, nested 5 deep") {
    TempDir dir;
    const auto run = trace_of({script("fib5.py")}, dir);
    CHECK(run.result.status() == 0);
    CHECK(run.result.out == "5\n");
    const std::string fib = py_name("fib", script("fib5.py"), 1);
    CHECK(run.trace.count(fib) == 15);
    CHECK(run.trace.max_depth(fib) == 5);
    CHECK(run.trace.nesting_problem().empty());
    CHECK(run.trace.count(py_name("<module>", script("fib5.py"), 1)) == 1);
    CHECK(run.trace.count("builtins.print") == 1);
    CHECK(run.trace.metadata.at("dropped_events") == "0");
    CHECK(run.trace.metadata.at("unfinished_calls") == "0");
    CHECK(run.trace.processes.begin()->second == script("fib5.py"));
    CHECK(run.trace.threads.begin()->second == "MainThread");
}

TEST_CASE("names that are not UTF-8 are escaped and each function is kept apart") {
    // Before: each lone surrogate became '?', and functions of x\xff.py and x\xfe.py were
    // one function of 'x?.py' with two calls (report, diff, pstats and folded summed them).
    TempDir dir;
    const auto run = trace_of({script("undecodable_names.py"), dir.path()}, dir);
    CHECK(run.result.status() == 0);
    CHECK(run.trace.count(py_name("f", dir.path() + "/x\\udcff.py", 1)) == 1);
    CHECK(run.trace.count(py_name("f", dir.path() + "/x\\udcfe.py", 1)) == 1);
    const std::string file = script("undecodable_names.py");
    CHECK(run.trace.count(py_name("\\udcff", file, 16)) == 1);
    CHECK(run.trace.count(py_name("\\udcfe", file, 16)) == 1);
}

TEST_CASE("a compiled script run as the program (app.pyc) is traced") {
    // Before: python runs a .pyc's code with no exec audit event, so vztrace never saw the
    // program start: "no trace written: the program did not start", after it had run.
    TempDir dir;
    dir.write("app.py", "def work():\n    return 1\n\nwork()\nprint('ran')\n");
    const auto compiled = vztrace::testing::run_process(
        {kPython, "-c", "import py_compile, sys; py_compile.compile(sys.argv[1], sys.argv[2])",
         dir.file("app.py"), dir.file("app.pyc")});
    REQUIRE(compiled.status() == 0);
    const auto run = trace_of({dir.file("app.pyc")}, dir);
    CHECK(run.result.status() == 0);
    CHECK(run.result.out == "ran\n");
    CHECK(run.trace.count(py_name("work", dir.file("app.py"), 1)) == 1);
}

TEST_CASE("a program's subinterpreter is said to be left out, and changes nothing else") {
    // vztrace's hooks are the main interpreter's. The trace used to leave the calls run in
    // a subinterpreter out without a word; and a trace function the subinterpreter set
    // (its sys.settrace, which came to vztrace's audit hook like the main interpreter's)
    // made the frame hook give way in the main interpreter.
    TempDir dir;
    const std::string program = script("subinterpreter.py");
    const std::string trace_file = dir.file(vztrace::testing::trace_name("trace"));
    const Pair pair = run_both({program}, {}, trace_file);
    INFO(describe(pair));
    CHECK(pair.vztrace.status() == 0);
    CHECK(pair.vztrace.out == pair.python.out);
    CHECK(pair.vztrace.out == "in the subinterpreter 7\ndone\n");
    CHECK(pair.vztrace.err == normalized_python_stderr(pair.python.err));
    const Trace trace = load_trace(trace_file);
    CHECK(trace.count(named("main_side", program, 11)) == 4);
    CHECK(trace.count_prefix("sub_side") == 0);
    CHECK(trace.metadata.at("subinterpreters") == "1");
    // Python frames through the frame hook (its default with --ignore-c-function).
    const std::string frames_file = dir.file(vztrace::testing::trace_name("frames"));
    const auto loud = run_vztrace({"--ignore-c-function", "-o", frames_file, program});
    CHECK(contains(loud.err,
                   "vztrace: warning: the program created 1 subinterpreter; vztrace records the "
                   "main interpreter only, so the calls run in it are not in the trace\n"));
    const Trace frames = load_trace(frames_file);
    CHECK(frames.count(named("main_side", program, 11)) == 4);
    const std::string hook = frames.metadata.at("hook");
    INFO(hook);
    CHECK(contains(hook, "frame hook"));
    CHECK_FALSE(contains(hook, "trace function"));
    // Its audit events are not recorded either (--log-audit).
    const std::string audited_file = dir.file(vztrace::testing::trace_name("audited"));
    const auto audited =
        run_vztrace({"--quiet", "--log-audit=sys.settrace", "-o", audited_file, program});
    CHECK(audited.status() == 0);
    const Trace audit = load_trace(audited_file);
    CHECK(audit.count(named("main_side", program, 11)) == 4);
    CHECK(audit.instants_named("sys.settrace").empty());
    const auto report = run_vztrace({"report", trace_file});
    CHECK(report.status() == 0);
    CHECK(contains(report.out, "incomplete: the program created 1 subinterpreter (process "));
}

TEST_CASE("a call left at its first instruction, before CPython said it started, is recorded") {
    // CPython sends no start for a frame left at its first instruction when the program's
    // sys.settrace or sys.setprofile function raises at its 'call' event, or (3.11, 3.13) a
    // signal handler raises there; the frame's exit by exception still comes. The trace
    // used to leave those calls out (leaf: 4 or 5 of 7 recorded), and on 3.11 a
    // sys.setprofile function chained by vztrace's profile function gave the raising
    // frame two entries in the traceback. With --log-func-args on 3.12, the int argument's
    // repr ran the signal handler inside vztrace's start callback, unrecorded.
    const std::string program = script("raised_at_start.py");
    const std::string leaf = named("leaf", program, 13);
    const auto python = vztrace::testing::run_process({kPython, program});
    REQUIRE(python.status() == 0);
    CHECK(contains(python.out, "handler ran in leaf\n"));
    // CPython before 3.11.4 (Debian 12's 3.11.2) names leaf twice there, as its profile
    // trampoline added the frame to the traceback too (gh-102818): the program sees under
    // vztrace what its python shows.
    CHECK(contains(python.out, "setprofile raised in ['traced_then_quit', 'work', 'leaf', "));
    const char* other = kPythonMinor >= 12 ? "--hook=monitoring" : "--hook=profile";
    for (const char* mode : {"--ignore-c-function", "--hook=frame", other, "--log-func-args"}) {
        INFO(mode);
        TempDir dir;
        const auto run = traced({mode}, {program}, dir);
        INFO(run.result.err);
        CHECK(run.result.out == python.out);
        const Trace& trace = run.trace;
        CHECK(trace.count(leaf) == 7);
        CHECK(trace.count(named("work", program, 17)) == 3);
        CHECK(trace.count(named("on_signal", program, 50)) == 1);
        CHECK(trace.nesting_problem().empty());
    }
}

TEST_CASE("a C call ends where the program's profile function raised at its events") {
    // On 3.12+ the program's profile function (sys.monitoring's tool 6) is called before
    // vztrace's tool: when it raised at a C call's 'c_return' or 'c_exception', vztrace's
    // callback was never called, and the call stayed open, flagged, to its caller's end
    // (what came after nested under it). On 3.11, where vztrace records first, one that
    // raised at 'c_call' (no C function runs, no C_EXCEPTION comes) did the same.
    const std::string program = script("profiler_raises_at_c.py");
    const std::string work = named("work", program, 8);
    const std::string after = named("after", program, 17);
    for (const char* event : {"c_call", "c_return", "c_exception"}) {
        for (const char* mode : {"--quiet", "--log-func-args"}) {
            DYNAMIC_SECTION(event << " " << mode) {
                const auto python = vztrace::testing::run_process({kPython, program, event});
                TempDir dir;
                const auto run = traced({mode}, {program, event}, dir);
                INFO(run.result.err);
                CHECK(run.result.out == python.out);
                CHECK(run.result.out == "caught None\n");
                const Trace& trace = run.trace;
                REQUIRE(trace.count(work) == 1);
                REQUIRE(trace.count(after) == 1);
                const auto called = trace.named(work).at(0);
                std::size_t inside = 0;
                for (const auto& slice : trace.slices) {
                    if (slice.name != "builtins.len" || slice.ts_ns < called.ts_ns) continue;
                    ++inside;
                    CHECK_FALSE(slice.unfinished);
                    CHECK(slice.end_ns() <= called.end_ns());
                }
                // No C function runs when 'c_call' raises; 3.12+ records no start then.
                const bool started = std::string(event) != "c_call" || kPythonMinor == 11;
                CHECK(inside == (started ? 1U : 0U));
                CHECK(trace.named(after).at(0).ts_ns >= called.end_ns());
                CHECK(trace.nesting_problem().empty());
            }
        }
    }
}

TEST_CASE("the program's first gc.collect() finds no module of vztrace's making") {
    // vztrace imports atexit (and gc for --log-gc) and takes it out of sys.modules again:
    // on 3.13 the dropped module was garbage (9 objects) that python's run has not.
    const std::string program = script("gc_garbage.py");
    const auto python = vztrace::testing::run_process({kPython, program});
    REQUIRE(python.out == "[]\n");
    for (const char* mode : {"--quiet", "--log-gc"}) {
        INFO(mode);
        TempDir dir;
        const auto run = traced({mode}, {program}, dir);
        INFO(run.result.err);
        CHECK(run.result.out == python.out);
    }
}

TEST_CASE("call counts equal a sys.setprofile reference count, under every --hook") {
    // The frame hook (the default) and the mechanism it gives way to record the same calls.
    const char* other = kPythonMinor >= 12 ? "monitoring" : "profile";
    for (const char* hook : {"frame", other})
        for (const char* name : {"classes.py", "generators.py", "exceptions.py",
                                 "builtins_sorting.py", "call_sites.py", "c_method_names.py"}) {
            DYNAMIC_SECTION(name << " --hook " << hook) {
                const std::string program = script(std::string("programs/") + name);
                const auto expected = reference_counts(program);
                TempDir dir;
                const auto run = trace_of({"--hook", hook, program}, dir);
                CHECK(
                    run.trace.metadata.at("hook").rfind(std::string(hook) == "frame" ? "frame hook"
                                                        : kPythonMinor >= 12 ? "sys.monitoring"
                                                                             : "PyEval_SetProfile",
                                                        0) == 0);
                REQUIRE(run.result.status() == 0);
                const auto actual = calls_from(run.trace, program);
                std::size_t compared = 0;
                std::size_t relevant = 0;
                for (const auto& [key, count] : expected) {
                    // The reference counts C calls only from the program's code; its Python
                    // counts include the reference runner's own imports, which are left out.
                    const bool is_c = key.find(" (") == std::string::npos;
                    if (!is_c && key.find(program) == std::string::npos) continue;
                    ++relevant;
                    INFO(key);
                    const auto found = actual.find(key);
                    CHECK((found == actual.end() ? 0 : found->second) == count);
                    ++compared;
                }
                CHECK(compared >= 5);
                CHECK(actual.size() == relevant);
                CHECK(run.trace.nesting_problem().empty());
            }
        }
}

TEST_CASE("every thread's calls are recorded under the thread's own name") {
    TempDir dir;
    const auto run = trace_of({script("threads.py")}, dir);
    REQUIRE(run.result.status() == 0);
    const std::string work = py_name("work", script("threads.py"), 4);
    const std::string square = py_name("square", script("threads.py"), 11);
    std::map<std::string, std::size_t> squares_by_thread;
    for (const auto& e : run.trace.named(square)) squares_by_thread[run.trace.threads.at(e.tid)]++;
    for (int i = 0; i < 4; ++i) {
        const std::string name = "worker-" + std::to_string(i);
        INFO(name);
        CHECK(squares_by_thread[name] == static_cast<std::size_t>(100 + i));
    }
    CHECK(run.trace.count(work) == 4);
    CHECK(run.trace.nesting_problem().empty());
    for (const auto& [tid, name] : run.trace.threads) CHECK(name.rfind("Dummy", 0) != 0);
}

TEST_CASE("asyncio coroutines are recorded at every resume") {
    TempDir dir;
    const auto run = trace_of({script("async_prog.py")}, dir);
    REQUIRE(run.result.status() == 0);
    CHECK(run.result.out == "[10, 10, 10]\n");
    const std::string chain = py_name("chain", script("async_prog.py"), 9);
    // Each of 3 chains starts once and resumes after each of its 10 suspensions.
    CHECK(run.trace.count(chain) == 3 * 11);
    CHECK(run.trace.count_prefix("step (") >= 15);
    CHECK(run.trace.nesting_problem().empty());
}

TEST_CASE("every exit path writes a valid trace and keeps python's status") {
    const std::map<std::string, int> modes = {
        {"normal", 0}, {"exit3", 3}, {"exitmsg", 1}, {"raise", 1}, {"kbint", -2}};
    for (const auto& [mode, status] : modes) {
        DYNAMIC_SECTION("mode " << mode) {
            TempDir dir;
            const auto run = trace_of({script("exits.py"), mode}, dir);
            CHECK(run.result.status() == status);
            CHECK(run.trace.count(py_name("main", script("exits.py"), 13)) == 1);
            CHECK(run.trace.nesting_problem().empty());
            if (mode == "raise") {
                CHECK(run.trace.count(py_name("deeper", script("exits.py"), 7)) == 5);
            }
        }
    }
}

TEST_CASE("interpreter start-up is recorded under its own top-level slice") {
    TempDir dir;
    const auto run = trace_of({script("fib5.py")}, dir);
    const auto startup = run.trace.named("python start-up");
    REQUIRE(startup.size() == 1);
    const auto module = run.trace.named(py_name("<module>", script("fib5.py"), 1)).at(0);
    CHECK(module.ts_ns >= startup[0].end_ns());
    // site runs inside the start-up slice (unless -S).
    bool site_inside = false;
    for (const auto& e : run.trace.slices) {
        const bool is_site = e.name.find("/site.py:") != std::string::npos ||
                             e.name.find("<frozen site>:") != std::string::npos;
        if (is_site && e.ts_ns >= startup[0].ts_ns && e.end_ns() <= startup[0].end_ns()) {
            site_inside = true;
        }
    }
    CHECK(site_inside);
}

TEST_CASE("atexit callbacks that start-up registered are recorded, with or without start-up") {
    // atexit calls the last registered first, and vztrace's callback that stops recording
    // was registered at the program's start: a sitecustomize's (a .pth file's, coverage's
    // process start-up) ran after it, and their calls were in no trace.
    TempDir dir;
    dir.write("site/sitecustomize.py",
              "import atexit\n"
              "def at_end():\n"
              "    helper()\n"
              "def helper():\n"
              "    print('at_end ran')\n"
              "atexit.register(at_end)\n");
    RunOptions options;
    options.env["PYTHONPATH"] = dir.file("site");
    const std::string site = dir.file("site/sitecustomize.py");
    for (const std::vector<std::string>& flags :
         {std::vector<std::string>{}, {"--no-startup"}, {"--ignore-c-function"}}) {
        const std::string out = dir.file(vztrace::testing::trace_name("t"));
        std::vector<std::string> args = {"--quiet", "-o", out};
        args.insert(args.end(), flags.begin(), flags.end());
        args.insert(args.end(), {"-c", "print('program')"});
        const auto result = run_vztrace(args, options);
        INFO(result.err);
        REQUIRE(result.status() == 0);
        CHECK(result.out == "program\nat_end ran\n");
        const Trace trace = load_trace(out);
        CHECK(trace.count(py_name("at_end", site, 2)) == 1);
        CHECK(trace.count(py_name("helper", site, 4)) == 1);
        CHECK(trace.nesting_problem().empty());
    }
}

TEST_CASE("the launcher's own frames (runpy) are not shown as the program's calls") {
    TempDir dir;
    RunOptions options;
    options.cwd = kScripts;
    const auto run = trace_of({"-m", "mypkg"}, dir, options);
    REQUIRE(run.result.status() == 0);
    CHECK(run.trace.count(py_name("double", script("mypkg/__main__.py"), 6)) == 1);
    for (const auto& e : run.trace.slices) {
        INFO(e.name);
        CHECK(e.name.find("runpy") == std::string::npos);
    }
}

TEST_CASE("option --ignore-c-function records Python functions only") {
    TempDir dir;
    const auto run = trace_of({"--ignore-c-function", script("fib5.py")}, dir);
    CHECK(run.trace.count_prefix("fib (") == 15);
    CHECK(run.trace.count("builtins.print") == 0);
}

TEST_CASE("with little --max-memory the program waits for the writer and nothing is lost") {
    TempDir dir;
    const auto run = run_vztrace({"--quiet", "--max-memory", "1M", "-o",
                                  dir.file(vztrace::testing::trace_name("t")), script("heavy.py")});
    CHECK(run.status() == 0);
    CHECK(run.out == "20000100000\n");
    const auto trace = load_trace(dir.file(vztrace::testing::trace_name("t")));
    CHECK(trace.metadata.at("memory_limit_reached") == "true");
    CHECK(trace.metadata.at("dropped_events") == "0");
    CHECK(trace.count_prefix("leaf (") == 200000);
    CHECK(trace.nesting_problem().empty());
}

TEST_CASE("threads that have ended hold no memory for records") {
    // Each thread kept its last chunk (64 KiB) until the end of the run: 300 threads one
    // after another went past --max-memory 8M (the pool gave way, with nothing in flight),
    // and a program starting a thread per request grew by about 70 KB a thread.
    TempDir dir;
    const std::string path = dir.file(vztrace::testing::trace_name("t"));
    const auto run =
        run_vztrace({"--quiet", "--max-memory", "8M", "-o", path, script("thread_churn.py")});
    INFO(run.err);
    CHECK(run.status() == 0);
    CHECK(run.out == "300\n");
    const auto trace = load_trace(path);
    CHECK(trace.metadata.at("memory_limit_reached") == "false");
    CHECK(trace.metadata.at("dropped_events") == "0");
    CHECK(trace.count(named("work", script("thread_churn.py"), 8)) == 300);
    CHECK(trace.nesting_problem().empty());
}

TEST_CASE("under --ring, threads that have exited and been given up leave a valid trace") {
    // The ring retires a thread that has exited once it has given up every chunk of it
    // (each kept about 1.6 KB to the end: 20,000 threads took 49 MB, now 17 MB). What the
    // ring keeps of the newest threads is written whole, nested, with their names.
    TempDir dir;
    const std::string path = dir.file(vztrace::testing::trace_name("t"));
    const auto run =
        run_vztrace({"--quiet", "--ring", "1M", "-o", path, script("thread_churn.py")});
    INFO(run.err);
    CHECK(run.status() == 0);
    CHECK(run.out == "300\n");
    const auto trace = load_trace(path);
    const auto works = trace.count(named("work", script("thread_churn.py"), 8));
    CHECK(works > 0);
    CHECK(works <= 300);
    CHECK(trace.nesting_problem().empty());
    for (const auto& [tid, name] : trace.threads) CHECK_FALSE(name.empty());
}

// [unsanitized]: not run against a sanitized vztrace, whose allocator ends the process where
// memory is refused or keeps freed memory in quarantine (tests/CMakeLists.txt).
TEST_CASE("threads that ended keep no table of names", "[unsanitized]") {
    // Each thread's sequence kept, to the end of the run, a table of the names it had sent:
    // 4 bytes (8 as it doubled) for every symbol id up to the highest it used. 2,700 threads
    // in a program of 5,000 functions grew the peak RSS by about 120 MB. (Not under the
    // sanitizers: AddressSanitizer keeps freed memory in quarantine.)
    TempDir dir;
    const auto run = run_vztrace({"--quiet", "-o", dir.file(vztrace::testing::trace_name("t")),
                                  script("thread_names_churn.py")});
    INFO(run.err);
    REQUIRE(run.status() == 0);
    CHECK(std::stoi(run.out) < 40);  // MB
    CHECK(load_trace(dir.file(vztrace::testing::trace_name("t"))).count_prefix("f4999 (") == 3001);
}

TEST_CASE("threads that C code starts keep no chunk once they end", "[unsanitized]") {
    // A thread that C code starts (a ctypes callback as its start routine) ends without a
    // word to vztrace: its last chunk of records stayed to the end of the run, 64 KiB and
    // more a thread, and 2,700 such threads grew the peak RSS by about 190 MB. With and
    // without C calls (3.11: the profile hook and the frame hook).
    for (const std::string ignore_c : {"", "1"}) {
        INFO("VZTRACE_IGNORE_C_FUNCTION=" << ignore_c);
        TempDir dir;
        RunOptions options;
        options.env["VZTRACE_IGNORE_C_FUNCTION"] = ignore_c;
        const std::string path = dir.file(vztrace::testing::trace_name("t"));
        const auto run = run_vztrace({"--quiet", "-o", path, script("c_thread_churn.py")}, options);
        INFO(run.err);
        REQUIRE(run.status() == 0);
        CHECK(std::stoi(run.out) < 40);  // MB
        const auto trace = load_trace(path);
        CHECK(trace.count(named("body", script("c_thread_churn.py"), 14)) == 3000);
        CHECK(trace.count(named("leaf", script("c_thread_churn.py"), 10)) == 9000);
        if (ignore_c.empty()) {
            CHECK(trace.count("builtins.len") >= 9000);
        } else {
            CHECK(trace.count("builtins.len") == 0);
        }
        CHECK(trace.nesting_problem().empty());
    }
}

TEST_CASE("memory refused inside a callback stops the recording and the program goes on",
          "[unsanitized]") {
    // A limit on the address space the program fills, then a function vztrace has not named
    // yet: its name's memory was refused inside the callback, and std::bad_alloc ended the
    // process with SIGABRT (status 134) where python printed "ok called". Both mechanisms:
    // with C calls (sys.monitoring, 3.11's profile hook) and without (the frame hook).
    for (const std::string ignore_c : {"", "1"}) {
        INFO("VZTRACE_IGNORE_C_FUNCTION=" << ignore_c);
        TempDir dir;
        RunOptions options;
        options.env["VZTRACE_IGNORE_C_FUNCTION"] = ignore_c;
        const std::string path = dir.file(vztrace::testing::trace_name("t"));
        const auto pair = run_both({script("memory_refused.py")}, options, path);
        INFO(describe(pair));
        CHECK(pair.python.status() == 0);
        CHECK(pair.python.out == "ok called\n");
        CHECK(pair.vztrace.status() == pair.python.status());
        CHECK(pair.vztrace.out == pair.python.out);
        const auto trace = load_trace(path);
        CHECK(trace.metadata.at("memory_refused") == "true");
        CHECK(trace.count_prefix("before (") == 1);
        CHECK(trace.count_prefix("fxxxx") == 0);
        CHECK(trace.nesting_problem().empty());
        const auto said = run_vztrace({"-o", path, script("memory_refused.py")}, options);
        CHECK(said.status() == 0);
        CHECK(contains(said.err, "vztrace: warning: the system refused vztrace memory"));
    }
}

TEST_CASE("a ring whose memory the system refuses says so, not that it was full", "[unsanitized]") {
    // Under a limit on the address space the ring wrapped at the memory it got, silently:
    // stderr and report said only that the ring (1 GiB) kept the newest events, and the
    // metadata's memory_refused was false.
    TempDir dir;
    const std::string path = dir.file(vztrace::testing::trace_name("t"));
    const auto run = run_vztrace({"--ring", "1G", "-o", path, script("ring_refused.py")});
    CHECK(run.status() == 0);
    CHECK(run.out == "done 3000000\n");
    CHECK(contains(run.err, "vztrace: warning: the system refused memory for the ring"));
    const auto trace = load_trace(path);
    CHECK(trace.metadata.at("memory_refused") == "true");
    CHECK(trace.metadata.at("overwritten_events") != "0");
    const auto report = run_vztrace({"report", path});
    CHECK(contains(report.out, "incomplete: the system refused memory for the ring"));
}

TEST_CASE("the summary line says where the trace is and --quiet silences it") {
    TempDir dir;
    const auto loud =
        run_vztrace({"-o", dir.file(vztrace::testing::trace_name("t")), script("fib5.py")});
    CHECK(loud.out == "5\n");
    CHECK(loud.err.find("vztrace: wrote ") == 0);
    CHECK(loud.err.find(dir.file(vztrace::testing::trace_name("t"))) != std::string::npos);
    CHECK(loud.err.find("perfetto") != std::string::npos);
    const auto quiet = run_vztrace(
        {"--quiet", "-o", dir.file(vztrace::testing::trace_name("t")), script("fib5.py")});
    CHECK(quiet.err.empty());
}

TEST_CASE("a trace that cannot be written is an error with its own status") {
    const auto full = run_vztrace({"-o", "/dev/full", script("fib5.py")});
    CHECK(full.out == "5\n");
    CHECK(full.status() == 74);
    CHECK(full.err == "vztrace: error: cannot write '/dev/full': No space left on device\n");
    // The program's own failure status wins over vztrace's.
    const auto failing = run_vztrace({"-o", "/dev/full", script("exits.py"), "exit3"});
    CHECK(failing.status() == 3);
    // sys.exit(0) in a script or -c ends the process inside Py_RunMain (python calls exit()
    // there), and os._exit(0) at once: both exited 0, the trace lost.
    for (const std::string mode : {"exit0", "osexit0"}) {
        INFO(mode);
        const auto ended = run_vztrace({"-o", "/dev/full", script("exits.py"), mode});
        CHECK(ended.out == "start " + mode + "\n");
        CHECK(ended.status() == 74);
        CHECK(ended.err == "vztrace: error: cannot write '/dev/full': No space left on device\n");
    }
    CHECK(run_vztrace({"-o", "/dev/full", "-c", "raise SystemExit"}).status() == 74);
    CHECK(run_vztrace({"-o", "/dev/full", "-c", "import os; os._exit(3)"}).status() == 3);
    // A missing directory is reported before the program runs.
    const auto missing = run_vztrace({"-o", "/nonexistent-dir/t.json", script("fib5.py")});
    CHECK(missing.status() == 2);
    CHECK(missing.out.empty());
    CHECK(missing.err.rfind("vztrace: error: cannot write", 0) == 0);
    // So is a name longer than a file's can be: the program ran, then the rename failed
    // (status 74, no trace; hunt AS).
    TempDir dir;
    const std::string long_name = dir.file(std::string(250, 'b') + ".pftrace");
    const auto too_long = run_vztrace({"-o", long_name, "-c", "print('ran')"});
    CHECK(too_long.status() == 2);
    CHECK(too_long.out.empty());
    CHECK(too_long.err == "vztrace: error: cannot write '" + long_name +
                              "': its name is 258 bytes, longer than the 255 a file in '" +
                              dir.path() + "' can have\n");
    CHECK(vztrace::testing::names_in(dir.path()).empty());
}

TEST_CASE("a trace that cannot be put at -o, complete, is said where it is") {
    // The program renamed -o's directory: the trace was left there under a hidden name, and
    // nothing said so (hunt AU).
    TempDir dir;
    std::filesystem::create_directories(dir.file("d1"));
    dir.write("moves.py",
              "import os, sys\n"
              "def f(i):\n    return i + 1\n"
              "for i in range(1000):\n    f(i)\n"
              "os.rename(sys.argv[1], sys.argv[2])\n"
              "print('moved')\n");
    const auto run = run_vztrace(
        {"-o", dir.file("d1/t.pftrace"), dir.file("moves.py"), dir.file("d1"), dir.file("d2")});
    CHECK(run.status() == 74);
    CHECK(run.out == "moved\n");
    const auto left = vztrace::testing::names_in(dir.file("d2"));
    REQUIRE(left.size() == 1);
    CHECK(run.err == "vztrace: error: cannot write '" + dir.file("d1/t.pftrace") +
                         "': No such file or directory (the trace is left at '" +
                         dir.file("d2/" + left[0]) + "')\n");
    CHECK(load_trace(dir.file("d2/" + left[0])).count_prefix("f (") == 1000);
}

TEST_CASE("an existing trace is replaced by the new one, with no temporary left behind") {
    TempDir dir;
    dir.write(vztrace::testing::trace_name("t"), "old");
    const auto run = run_vztrace(
        {"--quiet", "-o", dir.file(vztrace::testing::trace_name("t")), script("fib5.py")});
    CHECK(run.status() == 0);
    CHECK(load_trace(dir.file(vztrace::testing::trace_name("t"))).count_prefix("fib (") == 15);
    CHECK(std::distance(std::filesystem::directory_iterator(dir.path()),
                        std::filesystem::directory_iterator()) == 1);
}

TEST_CASE("programs using sys.monitoring tools 0, 2, 3, 4 and cProfile run as under python") {
    TempDir dir;
    const Pair pair =
        run_both({script("monitoring_user.py")}, {}, dir.file(vztrace::testing::trace_name("t")));
    INFO(describe(pair));
    CHECK(pair.vztrace.status() == 0);
    CHECK(pair.vztrace.out == pair.python.out);
    CHECK(pair.vztrace.out.find("cProfile saw fib calls: 177") != std::string::npos);
    if (kPythonMinor >= 12) {
        // vztrace's own tool is not among the program's view of sys.monitoring.
        CHECK(pair.vztrace.out.find("before events of tools 0-5: [0, 0, 0, 0, 0, 0]\n") !=
              std::string::npos);
        CHECK(pair.vztrace.out.find("with tool 2 all events: {'PY_START': 4}\n") !=
              std::string::npos);
        // Both vztrace and the program's own tools see every call.
        CHECK(load_trace(dir.file(vztrace::testing::trace_name("t"))).named("fib (").size() ==
              177 + 5);
    }
}

// vztrace's tool id (5, its first choice) is a free one to the program: when the program
// names it, vztrace moves to another with all its callbacks and events, and the program
// gets every event there, even where vztrace's callbacks had DISABLEd them. Before, the
// program's use_tool_id(5) failed ("already in use"), get_tool(5) said "vztrace", and a
// register_callback(5, ...) replaced vztrace's own callback.
TEST_CASE("a program using sys.monitoring tool 5 and four others runs as under python") {
    for (const std::string filter : {"", "--ignore-c-function", "--exclude-files"}) {
        INFO("with " << filter);
        TempDir dir;
        RunOptions options;
        if (filter == "--ignore-c-function") options.env["VZTRACE_IGNORE_C_FUNCTION"] = "1";
        // The helper module ran before the program's tool: vztrace DISABLEd it on tool 5.
        if (filter == "--exclude-files")
            options.env["VZTRACE_EXCLUDE_FILES"] = script("helper_module.py");
        const std::string path = dir.file(vztrace::testing::trace_name("t"));
        const Pair pair = run_both({script("own_tool_ids.py"), kScripts}, options, path);
        INFO(describe(pair));
        CHECK(pair.vztrace.status() == 0);
        CHECK(pair.vztrace.out == pair.python.out);
        const Trace trace = load_trace(path);
        if (kPythonMinor < 12) {
            CHECK(pair.vztrace.out == "no sys.monitoring: 13\n");
            CHECK(trace.count_prefix("fib (") == 41);
            continue;
        }
        CHECK(contains(pair.vztrace.out, "tool 5 saw starts: ['fib', 'helper', 'lengths'] 17\n"));
        CHECK(contains(pair.vztrace.out, "tool 5 saw len calls: 3\n"));
        // fib(5), fib(6), fib(4): nothing lost or doubled while vztrace moved.
        CHECK(trace.count_prefix("fib (") == 15 + 25 + 9);
        CHECK(trace.count_prefix("helper (") == (filter == "--exclude-files" ? 0 : 2));
        CHECK(contains(trace.metadata.at("hook"), "; tool 4 from when the program took tool 5"));
        CHECK(trace.nesting_problem().empty());
    }
}

// With the frame hook in the slot CPython calls Python functions as it calls C ones, and
// sends a C return (or a C raise) when they end. While the hook is live the program's tools
// never see those; the 150 frames the hook had entered before it gave way returned after,
// and the program's tool saw a C return or a C raise for each.
TEST_CASE(
    "a program's own tool sees no C return of a Python function after the frame hook gave way") {
    for (const std::string how : {"return", "raise"}) {
        for (const std::string hook : {"frame", "auto"}) {
            INFO(how << ", --hook " << hook);
            TempDir dir;
            RunOptions options;
            options.env["VZTRACE_HOOK"] = hook;
            options.env["VZTRACE_IGNORE_C_FUNCTION"] = "1";
            const std::string path = dir.file(vztrace::testing::trace_name("t"));
            const Pair pair = run_both({script("own_tool_after_handover.py"), how}, options, path);
            INFO(describe(pair));
            CHECK(pair.vztrace.status() == 0);
            CHECK(pair.vztrace.out == pair.python.out);
            const Trace trace = load_trace(path);
            CHECK(trace.count_prefix(how == "return" ? "down (" : "boom (") == 201);
            CHECK(trace.nesting_problem().empty());
        }
    }
}

// A thread's name was taken when it ended, or at the program's exit work: one still alive
// at os._exit or a terminating signal was "Thread <tid>".
TEST_CASE("a thread alive at os._exit or SIGTERM is named as the program last named it") {
    for (const std::string how : {"exit", "term"}) {
        INFO(how);
        TempDir dir;
        const std::string path = dir.file(vztrace::testing::trace_name("t"));
        const auto result = run_vztrace({"--quiet", "-o", path, script("renamed_thread.py"), how});
        CHECK(result.status() == (how == "exit" ? 3 : -SIGTERM));  // as under python
        CHECK(result.out == "renamed\n");
        const Trace trace = load_trace(path);
        std::set<std::string> names;
        for (const auto& [tid, name] : trace.threads) names.insert(name);
        CHECK(names.count("renamed") == 1);
        CHECK(names.count("orig") == 0);
        for (const std::string& name : names) CHECK(name.rfind("Thread ", 0) != 0);
    }
}

TEST_CASE("the tool.vztrace table of the working directory's pyproject.toml applies; -o beats it") {
    TempDir dir;
    const std::string from_config = vztrace::testing::trace_name("from_config");
    dir.write("pyproject.toml", "[tool.vztrace]\noutput = \"" + from_config + "\"\nquiet = true\n");
    RunOptions options;
    options.cwd = dir.path();
    const auto run = run_vztrace({script("fib5.py")}, options);
    INFO(run.err);
    CHECK(run.status() == 0);
    CHECK(run.err.empty());  // quiet = true
    REQUIRE(vztrace::testing::file_exists(dir.file(from_config)));
    CHECK(load_trace(dir.file(from_config)).count_prefix("fib (") == 15);

    std::filesystem::remove(dir.file(from_config));
    const std::string from_cli = vztrace::testing::trace_name("from_cli");
    const auto cli = run_vztrace({"-o", from_cli, script("fib5.py")}, options);
    INFO(cli.err);
    CHECK(cli.status() == 0);
    CHECK(vztrace::testing::file_exists(dir.file(from_cli)));
    CHECK_FALSE(vztrace::testing::file_exists(dir.file(from_config)));
}

TEST_CASE("a child started in another project reads no config file: it has the root's") {
    TempDir dir;
    const std::string trace = vztrace::testing::trace_name("t");
    dir.write("root/pyproject.toml", "[tool.vztrace]\noutput = \"" + trace + "\"\nquiet = true\n");
    // Read by the child, this would end it with status 2 before its program ran.
    dir.write("elsewhere/pyproject.toml", "[tool.vztrace]\nnot_an_option = true\n");
    dir.write("root/parent.py",
              "import subprocess, sys\n"
              "code = 'def in_child():\\n    pass\\nin_child()'\n"
              "child = subprocess.run([sys.executable, '-c', code], cwd=sys.argv[1])\n"
              "print(child.returncode)\n");
    RunOptions options;
    options.cwd = dir.file("root");
    const auto run = run_vztrace({"parent.py", dir.file("elsewhere")}, options);
    INFO(run.err);
    CHECK(run.status() == 0);
    CHECK(run.out == "0\n");
    CHECK(run.err.empty());
    REQUIRE(vztrace::testing::file_exists(dir.file("root/" + trace)));
    CHECK(load_trace(dir.file("root/" + trace)).count_prefix("in_child (") == 1);
    // The same file read by a root is an error naming it.
    options.cwd = dir.file("elsewhere");
    const auto root = run_vztrace({"-c", "pass"}, options);
    CHECK(root.status() == 2);
    CHECK(root.err ==
          "vztrace: error: " + dir.file("elsewhere/pyproject.toml") +
              ":2: [tool.vztrace] not_an_option: no such option (see vztrace --help)\n");
}

TEST_CASE("generators that an exception thrown into their chain resumes keep their calls") {
    // 3.11 resumes the generators waiting in a `yield from` or `await` chain with no 'call'
    // to the profile function when the exception thrown in ends the innermost one: their
    // calls nested under the call before, their returns ended outer calls early (flagged
    // unfinished) or were dropped (hunt AJ). The default hook and the profile hook on 3.11;
    // every hook elsewhere.
    for (const std::string hook :
         {"auto", "frame", kPythonMinor == 11 ? "profile" : "monitoring"}) {
        DYNAMIC_SECTION("--hook " << hook) {
            TempDir dir;
            const auto run = trace_of({"--hook", hook, script("throw_into_chain.py")}, dir);
            REQUIRE(run.result.status() == 0);
            const Trace& trace = run.trace;
            CHECK(trace.nesting_problem().empty());
            CHECK(trace.metadata.at("unfinished_calls") == "0");
            const std::string file = script("throw_into_chain.py");
            const std::string chain = py_name("chain", file, 7);
            std::vector<std::string> parents;
            for (const auto& call : trace.named(py_name("helper", file, 3)))
                parents.push_back(trace.ancestors(call).at(0));
            CHECK(parents ==
                  std::vector<std::string>{chain, chain, chain, py_name("drive", file, 19)});
            // Three first starts, each to a yield; three resumptions by the throw.
            CHECK(trace.count(chain) == 6);
            for (const auto& call : trace.named(chain)) CHECK_FALSE(call.unfinished);

            const auto cancelled = trace_of({"--hook", hook, script("cancel_awaiting.py")}, dir);
            REQUIRE(cancelled.result.status() == 0);
            CHECK(cancelled.result.out == "5\n");
            const std::string awaiting = script("cancel_awaiting.py");
            CHECK(cancelled.trace.nesting_problem().empty());
            CHECK(cancelled.trace.metadata.at("unfinished_calls") == "0");
            const auto after = cancelled.trace.named(py_name("after_inner", awaiting, 6));
            REQUIRE(after.size() == 1);
            CHECK(cancelled.trace.ancestors(after[0]).at(0) == py_name("outer", awaiting, 22));
            const auto cleanup = cancelled.trace.named(py_name("cleanup", awaiting, 10));
            REQUIRE(cleanup.size() == 1);
            CHECK(cancelled.trace.ancestors(cleanup[0]).at(0) == py_name("inner", awaiting, 14));
        }
    }
}
