// `vztrace report`: the functions of a trace by self and total time, checked against the
// trace's own events, on vztrace's traces and VizTracer's JSON, and on bad input.
#include <fcntl.h>
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "e2e/e2e.hpp"
#include "tracer/format/perfetto_protos.hpp"
#include "tracer/format/perfetto_reader.hpp"
#include "tracer/format/proto_wire.hpp"

using namespace vztrace::e2e;
using vztrace::testing::load_trace;
using vztrace::testing::TempDir;
using vztrace::testing::Trace;
using vztrace::testing::TraceEvent;

namespace {

struct Expected {
    std::uint64_t calls = 0;
    std::int64_t self_ns = 0;
    std::int64_t total_ns = 0;
    std::int64_t max_ns = 0;
};

// Self and total time of each function, from the slices the test reader returns: a
// slice's children are the slices directly inside it on its thread.
std::map<std::string, Expected> expected_from(const Trace& trace) {
    std::map<std::int64_t, std::vector<TraceEvent>> threads;
    for (const auto& slice : trace.slices) threads[slice.tid].push_back(slice);
    std::map<std::string, Expected> result;
    for (auto& [tid, slices] : threads) {
        std::stable_sort(slices.begin(), slices.end(), [](const auto& a, const auto& b) {
            return a.ts_ns != b.ts_ns ? a.ts_ns < b.ts_ns : a.dur_ns > b.dur_ns;
        });
        std::vector<std::size_t> open;
        std::vector<std::int64_t> child(slices.size(), 0);
        std::vector<bool> outermost(slices.size(), true);
        for (std::size_t i = 0; i < slices.size(); ++i) {
            while (!open.empty() && slices[open.back()].end_ns() <= slices[i].ts_ns)
                open.pop_back();
            if (!open.empty()) child[open.back()] += slices[i].dur_ns;
            for (const std::size_t j : open) {
                if (slices[j].name == slices[i].name) outermost[i] = false;
            }
            open.push_back(i);
        }
        for (std::size_t i = 0; i < slices.size(); ++i) {
            Expected& e = result[slices[i].name];
            ++e.calls;
            e.self_ns += slices[i].dur_ns - child[i];
            if (outermost[i]) e.total_ns += slices[i].dur_ns;
            e.max_ns = std::max(e.max_ns, slices[i].dur_ns);
        }
    }
    return result;
}

struct Reported {
    std::uint64_t calls = 0;
    std::int64_t self_ns = 0;
    std::int64_t total_ns = 0;
    std::int64_t max_ns = 0;
};

struct Report {
    vztrace::testing::ProcessResult result;
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    // group index -> function name -> numbers
    std::vector<std::map<std::string, Reported>> groups;
};

void report_json(Report& report, std::vector<std::string> args) {
    args.insert(args.begin(), "report");
    args.push_back("--format=json");
    args.push_back("--limit=0");
    report.result = run_vztrace(args);
    INFO(report.result.err);
    REQUIRE(report.result.status() == 0);
    report.root = report.parser.parse(report.result.out);
    for (simdjson::dom::element group : report.root["groups"].get_array()) {
        std::map<std::string, Reported> functions;
        for (simdjson::dom::element f : group["functions"].get_array()) {
            Reported r;
            r.calls = std::uint64_t(f["calls"]);
            r.self_ns = std::int64_t(f["self_ns"]);
            r.total_ns = std::int64_t(f["total_ns"]);
            r.max_ns = std::int64_t(f["max_ns"]);
            functions[std::string(std::string_view(f["name"]))] = r;
        }
        report.groups.push_back(std::move(functions));
    }
}

// JSON traces keep microseconds (three decimals): a nanosecond or two of rounding a call.
void check_times(const Reported& got, const Expected& want, std::int64_t slack) {
    CHECK(got.calls == want.calls);
    CHECK(std::llabs(got.self_ns - want.self_ns) <= slack * static_cast<std::int64_t>(want.calls));
    CHECK(std::llabs(got.total_ns - want.total_ns) <=
          slack * static_cast<std::int64_t>(want.calls));
    CHECK(std::llabs(got.max_ns - want.max_ns) <= slack);
}

void write_gzip(const std::string& path, const std::string& text) {
    gzFile file = gzopen(path.c_str(), "wb");
    REQUIRE(file != nullptr);
    REQUIRE(gzwrite(file, text.data(), static_cast<unsigned>(text.size())) ==
            static_cast<int>(text.size()));
    gzclose(file);
}

// A VizTracer trace: complete events in microseconds, names from M events. a() calls b(),
// which calls a() again; c() is B/E pairs. pid 7, tid 8.
const char* kVizTracerJson = R"json({"traceEvents": [
 {"ph": "M", "pid": 7, "tid": 8, "name": "process_name", "args": {"name": "viz.py"}},
 {"ph": "M", "pid": 7, "tid": 8, "name": "thread_name", "args": {"name": "MainThread"}},
 {"pid": 7, "tid": 8, "ts": 1000.0, "dur": 100.0, "name": "a (viz.py:1)", "ph": "X", "cat": "FEE"},
 {"pid": 7, "tid": 8, "ts": 1010.0, "dur": 50.0, "name": "b (viz.py:5)", "ph": "X", "cat": "FEE"},
 {"pid": 7, "tid": 8, "ts": 1020.0, "dur": 10.0, "name": "a (viz.py:1)", "ph": "X", "cat": "FEE"},
 {"pid": 7, "tid": 8, "ts": 1200.0, "name": "c (viz.py:9)", "ph": "B"},
 {"pid": 7, "tid": 8, "ts": 1230.5, "name": "c (viz.py:9)", "ph": "E"}
], "viztracer_metadata": {"version": "1.1.1", "overflow": false}})json";

void check_viztracer(Report& report) {
    REQUIRE(report.groups.size() == 1);
    auto& functions = report.groups[0];
    // a: 100 us outer and 10 us inner; total counts the outer call only.
    CHECK(functions["a (viz.py:1)"].calls == 2);
    CHECK(functions["a (viz.py:1)"].total_ns == 100000);
    CHECK(functions["a (viz.py:1)"].self_ns == 50000 + 10000);
    CHECK(functions["a (viz.py:1)"].max_ns == 100000);
    CHECK(functions["b (viz.py:5)"].self_ns == 40000);
    CHECK(functions["b (viz.py:5)"].total_ns == 50000);
    CHECK(functions["c (viz.py:9)"].calls == 1);
    CHECK(functions["c (viz.py:9)"].self_ns == 30500);
    CHECK(std::uint64_t(report.root["calls"]) == 4);
}

}  // namespace

TEST_CASE("report gives each function's calls, self and total time as the trace has them") {
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("trace"));
    const auto run = run_vztrace({"--quiet", "-o", trace, script("programs/generators.py")});
    REQUIRE(run.status() == 0);
    const auto expected = expected_from(load_trace(trace));
    Report report;
    report_json(report, {trace});
    REQUIRE(report.groups.size() == 1);
    const auto& functions = report.groups[0];
    CHECK(functions.size() == expected.size());
    std::size_t compared = 0;
    for (const auto& [name, want] : expected) {
        INFO(name);
        const auto got = functions.find(name);
        REQUIRE(got != functions.end());
        check_times(got->second, want, vztrace::testing::testing_json() ? 1000 : 0);
        ++compared;
    }
    CHECK(compared > 20);
}

TEST_CASE("report --by thread gives each thread its own table, named as the program named it") {
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("trace"));
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("threads.py")}).status() == 0);
    Report report;
    report_json(report, {trace, "--by", "thread"});
    const std::string work = "work (" + script("threads.py") + ":4)";
    std::map<std::string, std::uint64_t> work_by_thread;
    std::size_t index = 0;
    for (simdjson::dom::element group : report.root["groups"].get_array()) {
        const std::string name{std::string_view(group["thread_name"])};
        const auto found = report.groups[index++].find(work);
        if (found != report.groups[index - 1].end()) work_by_thread[name] += found->second.calls;
    }
    const Trace loaded = load_trace(trace);
    std::map<std::string, std::uint64_t> expected;
    for (const auto& slice : loaded.slices) {
        if (slice.name == work) expected[loaded.threads.at(slice.tid)]++;
    }
    CHECK(work_by_thread == expected);
    CHECK(expected.size() >= 2);
}

TEST_CASE("report shows a thread's name with a line break in it on the heading's one line") {
    TempDir dir;
    dir.write("named.json", R"json({"traceEvents": [
 {"pid": 7, "tid": 8, "ph": "M", "name": "thread_name", "args": {"name": "two\nlines"}},
 {"pid": 7, "tid": 7, "ph": "M", "name": "process_name", "args": {"name": "tab\there"}},
 {"pid": 7, "tid": 8, "ts": 1000.0, "dur": 5.0, "name": "f", "ph": "X"}]})json");
    const auto text = run_vztrace({"report", dir.file("named.json"), "--by", "thread"});
    REQUIRE(text.status() == 0);
    CHECK(text.out.find("process 7 (tab\\there), thread 8 (two\\nlines)") != std::string::npos);
    CHECK(text.out.find("two\nlines") == std::string::npos);
    // Markdown shows them escaped too, a function's name with a NUL or an escape in it
    // as well (they went into the table as they were).
    dir.write("odd.json", R"json([{"pid": 1, "tid": 1, "ts": 1, "dur": 5, "ph": "X",
 "name": "f\u0000\u001b[31m"}])json");
    const auto markdown = run_vztrace({"report", dir.file("odd.json"), "--format", "markdown"});
    REQUIRE(markdown.status() == 0);
    CHECK(markdown.out.find("`f\\x00\\x1b[31m`") != std::string::npos);
    CHECK(markdown.out.find('\0') == std::string::npos);
    CHECK(markdown.out.find('\x1b') == std::string::npos);
}

TEST_CASE("report and diff show a trace's file name escaped and names' marks of direction too") {
    // Before: the header printed the trace's name as it was: one with "\e]0;...\a\e[2J"
    // set the terminal's title and cleared its screen. And a function's name with U+202E
    // (or U+009B, a C1 control) went to the terminal as it was.
    TempDir dir;
    const std::string name = dir.file("x\x1b]0;title\x07\x1b[2J.json");
    dir.write("x\x1b]0;title\x07\x1b[2J.json", R"json([{"pid": 1, "tid": 1, "ts": 1, "dur": 5,
 "ph": "X", "name": "abc\u202edcba\u009b31m"}])json");
    const auto report = run_vztrace({"report", name});
    REQUIRE(report.status() == 0);
    CHECK(report.out.find("x\\x1b]0;title\\x07\\x1b[2J.json (json): 1 call") != std::string::npos);
    CHECK(report.out.find("abc\\u202edcba\\x9b31m") != std::string::npos);
    const auto diff = run_vztrace({"diff", name, name});
    REQUIRE(diff.status() == 0);
    CHECK(diff.out.find("\\x1b[2J.json -> ") != std::string::npos);
    for (const std::string& out : {report.out, diff.out}) {
        CHECK(out.find('\x1b') == std::string::npos);
        CHECK(out.find('\x07') == std::string::npos);
        CHECK(out.find("\xE2\x80\xAE") == std::string::npos);
        CHECK(out.find("\xC2\x9B") == std::string::npos);
    }
}

// A thread with no call was counted from a Perfetto trace (its descriptor) but not from a
// JSON one (its name only), and export to Perfetto left it out: 2 threads of 2 processes
// became 1 of 1.
TEST_CASE("report counts a process that recorded no call, whatever the trace's format") {
    for (const char* name : {"t.pftrace", "t.json"}) {
        DYNAMIC_SECTION(name) {
            TempDir dir;
            const std::string trace = dir.file(name);
            const auto run = run_vztrace({"--quiet", "-o", trace, script("api/fork_paused.py")});
            REQUIRE(run.status() == 0);
            CHECK(run.out == "done\n");
            const std::string exported = dir.file("exported.pftrace");
            REQUIRE(run_vztrace({"export", trace, "-o", exported}).status() == 0);
            for (const std::string& path : {trace, exported}) {
                INFO(path);
                Report report;
                report_json(report, {path});
                CHECK(std::uint64_t(report.root["threads"]) == 2);
                CHECK(std::uint64_t(report.root["processes"]) == 2);
            }
        }
    }
}

// A process that execs itself keeps its pid and its main thread's tid: the trace gives the
// two images a thread track each, and both are that one thread.
TEST_CASE("report counts a thread that exec replaced once, as --by thread groups it") {
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("trace"));
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("tree/exec_self.py")}).status() == 0);
    Report report;
    report_json(report, {trace, "--by", "thread"});
    CHECK(report.groups.size() == 1);
    CHECK(std::uint64_t(report.root["threads"]) == 1);
    CHECK(std::uint64_t(report.root["processes"]) == 1);
    // Both images' calls are there, under the one thread.
    const auto has = [&](std::string_view prefix) {
        return std::any_of(report.groups[0].begin(), report.groups[0].end(),
                           [&](const auto& f) { return f.first.rfind(prefix, 0) == 0; });
    };
    CHECK(has("before_exec ("));
    CHECK(has("after_exec ("));
    const auto text = run_vztrace({"report", trace, "--limit", "1"});
    CHECK_THAT(text.out, Catch::Contains(" calls in 1 thread of 1 process, over "));
}

TEST_CASE("report counts the asyncio tasks of --log-async apart, and shows each --by thread") {
    // A Perfetto trace's task tracks were all one "process 0, thread 0", the steps of every
    // task together. Then each task was a thread and its steps calls: a one-thread program
    // read "5 threads", its calls more than the run's summary said, and "running" was a
    // function of the whole trace's table, its time counted twice.
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("trace"));
    const auto run = run_vztrace({"--log-async", "-o", trace, script("log_async.py")});
    REQUIRE(run.status() == 0);
    const std::size_t wrote = run.err.find("wrote ");
    REQUIRE(wrote != std::string::npos);
    const std::uint64_t summary_calls = std::stoull(run.err.substr(wrote + 6));

    Report all;
    report_json(all, {trace});
    CHECK(std::uint64_t(all.root["calls"]) == summary_calls);
    CHECK(std::uint64_t(all.root["threads"]) == 1);
    CHECK(std::uint64_t(all.root["processes"]) == 1);
    CHECK(std::uint64_t(all.root["tracks"]) >= 3);  // main, first, second
    REQUIRE(all.groups.size() == 1);
    CHECK_FALSE(all.groups[0].contains("running"));
    std::uint64_t calls = 0;
    for (const auto& [name, f] : all.groups[0]) calls += f.calls;
    CHECK(calls == summary_calls);

    Report by_process;
    report_json(by_process, {trace, "--by", "process"});
    REQUIRE(by_process.groups.size() == 1);
    CHECK_FALSE(by_process.groups[0].contains("running"));

    Report report;
    report_json(report, {trace, "--by", "thread"});
    std::map<std::string, std::uint64_t> steps;
    std::set<std::int64_t> pids;
    std::set<std::int64_t> tids;
    std::size_t index = 0;
    std::size_t threads = 0;
    std::uint64_t slices = 0;
    for (simdjson::dom::element group : report.root["groups"].get_array()) {
        const std::string name{std::string_view(group["thread_name"])};
        pids.insert(std::int64_t(group["pid"]));
        tids.insert(std::int64_t(group["tid"]));
        const auto& functions = report.groups[index++];
        if (!bool(group["track"])) {
            ++threads;
            CHECK_FALSE(functions.contains("running"));
            continue;
        }
        REQUIRE(functions.size() == 1);
        steps[name] = functions.at("running").calls;
        slices += steps[name];
    }
    CHECK(pids.size() == 1);
    CHECK_FALSE(pids.contains(0));
    CHECK(tids.size() == index);  // an id each
    CHECK(threads == 1);
    CHECK(steps["first (worker)"] == 3);
    CHECK(steps["second (worker)"] == 3);
    CHECK(steps.contains("Task-1 (main)"));
    CHECK(steps.size() == std::uint64_t(report.root["tracks"]));
    CHECK(slices == std::uint64_t(report.root["track_slices"]));
    const auto text = run_vztrace({"report", trace, "--limit", "1"});
    CHECK_THAT(text.out, Catch::Contains(fmt::format(" {} calls in 1 thread of 1 process, over ",
                                                     summary_calls)));
    CHECK_THAT(text.out, Catch::Contains(fmt::format("; {} slices on {} tracks of their own "
                                                     "(asyncio tasks), not counted as calls",
                                                     slices, steps.size())));
}

TEST_CASE("the run's summary counts a killed child's calls without its tasks' steps") {
    // The root reads a killed child's stream itself, and counted every slice in it as a
    // call, the steps of --log-async's tasks too, those it found open at the kill among
    // them (their ends written on the thread's track): the summary said more than the
    // trace held.
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("trace"));
    const auto run = run_vztrace({"--log-async", "-o", trace, script("tree/sigkill_async.py")});
    REQUIRE(run.status() == 0);
    CHECK(run.out == "victim exit -9\n");
    const std::size_t wrote = run.err.find("wrote ");
    REQUIRE(wrote != std::string::npos);
    Report report;
    report_json(report, {trace});
    // Some of the child's steps were written before the kill: how many depends on how far
    // its writer had got (under ASan and a loaded machine, 94 of 2,000 once).
    CHECK(std::uint64_t(report.root["track_slices"]) > 0);
    CHECK(std::uint64_t(report.root["calls"]) == std::stoull(run.err.substr(wrote + 6)));
    // A step left open at the kill ends on its task's track, not on the thread's.
    CHECK(vztrace::testing::load_trace(trace).nesting_problem().empty());
}

TEST_CASE("report and diff say when their output cannot be written, however long it is") {
    // Past stdio's buffer (--limit 0: every function of python's start-up) the failed
    // write went unnoticed: status 0 and nothing said.
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("trace"));
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("fib5.py")}).status() == 0);
    const std::vector<std::vector<std::string>> commands = {
        {"report", trace, "--limit", "1"},
        {"report", trace, "--limit", "0"},
        {"report", trace, "--limit", "0", "--format", "json"},
        {"diff", trace, trace, "--limit", "0"}};
    for (const auto& command : commands) {
        std::string label;
        for (const auto& word : command) label += word == trace ? "TRACE " : word + " ";
        INFO(label);
        std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$@\" >/dev/full", "sh", kVztrace};
        argv.insert(argv.end(), command.begin(), command.end());
        const auto full = vztrace::testing::run_process(argv);
        CHECK(full.status() == 74);
        CHECK(full.err == "vztrace: error: cannot write the output: No space left on device\n");
    }
}

TEST_CASE("report and diff refuse a count or a percentage that is not one, in one line") {
    // --limit -5 wrapped around to "all" and --fail-over nan could never fire; "abc" and
    // "-5" were called out of a range printed with 310 digits.
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("trace"));
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("fib5.py")}).status() == 0);
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"report", trace, "--limit", "-5"},
         "report: --limit: '-5' is not a whole number of 0 or more"},
        {{"report", trace, "--limit", "99999999999999999999"},
         "report: --limit: '99999999999999999999' is not a whole number of 0 or more"},
        {{"diff", trace, trace, "--limit", "-1"},
         "diff: --limit: '-1' is not a whole number of 0 or more"},
        {{"diff", trace, trace, "--fail-over", "-5"},
         "diff: --fail-over: '-5' is not a percentage of 0 or more"},
        {{"diff", trace, trace, "--fail-over", "abc"},
         "diff: --fail-over: 'abc' is not a percentage of 0 or more"},
        {{"diff", trace, trace, "--fail-over", "nan"},
         "diff: --fail-over: 'nan' is not a percentage of 0 or more"},
        // Decimal only (hex was read: 0x10 as 16%).
        {{"diff", trace, trace, "--fail-over", "0x10"},
         "diff: --fail-over: '0x10' is not a percentage of 0 or more"},
        {{"diff", trace, trace, "--fail-over", "1e1"},
         "diff: --fail-over: '1e1' is not a percentage of 0 or more"}};
    for (const auto& [args, message] : cases) {
        INFO(args[0] << " " << args[args.size() - 2] << " " << args.back());
        const auto result = run_vztrace(args);
        CHECK(result.status() == 2);
        CHECK(result.out.empty());
        CHECK(result.err == "vztrace: error: " + message + "\n");
    }
    CHECK(run_vztrace({"diff", trace, trace, "--fail-over", "2.5"}).status() == 0);
}

TEST_CASE("report reads a JSON B with no E as a call that the trace ended in", "[perfetto]") {
    // It was dropped, with the time of what ran inside it going to no caller.
    TempDir dir;
    dir.write("open.json", R"json({"traceEvents": [
 {"pid": 7, "tid": 8, "ts": 1000.0, "name": "outer", "ph": "B"},
 {"pid": 7, "tid": 8, "ts": 1010.0, "name": "inner", "ph": "B"},
 {"pid": 7, "tid": 8, "ts": 1020.0, "name": "inner", "ph": "E"},
 {"pid": 7, "tid": 8, "ts": 1030.0, "dur": 5.0, "name": "last", "ph": "X"}
]})json");
    Report report;
    report_json(report, {dir.file("open.json")});
    REQUIRE(report.groups.size() == 1);
    auto& functions = report.groups[0];
    CHECK(std::uint64_t(report.root["calls"]) == 3);
    // outer: 1000 to the thread's last time, 1035 us; inner and last within it.
    CHECK(functions["outer"].calls == 1);
    CHECK(functions["outer"].total_ns == 35000);
    CHECK(functions["outer"].self_ns == 35000 - 10000 - 5000);
    CHECK(functions["inner"].total_ns == 10000);
    CHECK(functions["last"].total_ns == 5000);
}

TEST_CASE("report pairs a JSON file's B and E events in time order, not file order", "[perfetto]") {
    // The format does not ask for time order: b's E (at 5) written after a's (at 10) ended
    // a at 5 and b at 10 (hunt AT).
    TempDir dir;
    dir.write("unsorted.json", R"json({"traceEvents": [
 {"pid": 1, "tid": 1, "ts": 0, "name": "a", "ph": "B"},
 {"pid": 1, "tid": 1, "ts": 2, "name": "b", "ph": "B"},
 {"pid": 1, "tid": 1, "ts": 10, "ph": "E"},
 {"pid": 1, "tid": 1, "ts": 5, "ph": "E"},
 {"pid": 1, "tid": 1, "ts": 7, "ph": "E"},
 {"pid": 1, "tid": 1, "ts": 6, "name": "c", "ph": "B"}
]})json");
    Report report;
    report_json(report, {dir.file("unsorted.json")});
    REQUIRE(report.groups.size() == 1);
    auto& functions = report.groups[0];
    CHECK(std::uint64_t(report.root["calls"]) == 3);
    CHECK(functions["a"].total_ns == 10000);
    CHECK(functions["a"].self_ns == 10000 - 3000 - 1000);
    CHECK(functions["b"].total_ns == 3000);
    CHECK(functions["c"].total_ns == 1000);
}

TEST_CASE("report reads VizTracer's JSON, plain and gzipped", "[perfetto]") {
    TempDir dir;
    dir.write("viz.json", kVizTracerJson);
    write_gzip(dir.file("viz.json.gz"), kVizTracerJson);
    for (const char* name : {"viz.json", "viz.json.gz"}) {
        DYNAMIC_SECTION(name) {
            Report report;
            report_json(report, {dir.file(name)});
            check_viztracer(report);
            CHECK(std::string_view(report.root["format"]) ==
                  (std::string(name).ends_with(".gz") ? "json.gz" : "json"));
        }
    }
    SECTION("text, markdown, --sort, --limit and --match") {
        const auto text = run_vztrace({"report", dir.file("viz.json"), "--sort", "total"});
        REQUIRE(text.status() == 0);
        CHECK(text.out.find("3 functions") != std::string::npos);
        const auto a = text.out.find("a (viz.py:1)");
        const auto b = text.out.find("b (viz.py:5)");
        CHECK(a != std::string::npos);
        CHECK(a < b);  // by total time: a (100 us) before b (50 us)
        const auto limited =
            run_vztrace({"report", dir.file("viz.json"), "--limit", "1", "--sort", "calls"});
        CHECK(limited.out.find("a (viz.py:1)") != std::string::npos);
        CHECK(limited.out.find("b (viz.py:5)") == std::string::npos);
        CHECK(limited.out.find("the first 1 shown") != std::string::npos);
        const auto matched =
            run_vztrace({"report", dir.file("viz.json"), "--match", "^c ", "--format", "markdown"});
        REQUIRE(matched.status() == 0);
        CHECK(matched.out.find("| `c (viz.py:9)` | 1 | 0.03") != std::string::npos);
        CHECK(matched.out.find("a (viz.py:1)") == std::string::npos);
    }
}

TEST_CASE("report reads a trace from a pipe, and a gzipped Perfetto trace", "[perfetto]") {
    // The format was told from the first bytes, then the file opened again: through a
    // pipe (`report <(zcat t.json.gz)`) those bytes were gone, and a good trace was called
    // damaged. A gzipped .pftrace was read as JSON and called damaged too.
    TempDir dir;
    const std::string trace = dir.file("t.pftrace");
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("programs/generators.py")}).status() == 0);
    REQUIRE(run_vztrace({"export", trace, "-o", dir.file("t.json")}).status() == 0);
    const std::string bytes = vztrace::testing::read_file(trace);
    write_gzip(dir.file("t.pftrace.gz"), bytes);
    write_gzip(dir.file("t.json.gz"), vztrace::testing::read_file(dir.file("t.json")));
    const auto calls_in = [](const std::string& out) {
        const auto at = out.find("\"calls\": ");
        return at == std::string::npos ? std::string() : out.substr(at, out.find(',', at) - at);
    };
    const auto whole = run_vztrace({"report", trace, "--format", "json"});
    REQUIRE(whole.status() == 0);
    const std::string calls = calls_in(whole.out);
    REQUIRE(!calls.empty());
    for (const char* name : {"t.pftrace", "t.json", "t.json.gz", "t.pftrace.gz"}) {
        INFO(name);
        const std::string file = dir.file(name);
        const auto gzipped = run_vztrace({"report", file, "--format", "json"});
        CHECK(gzipped.status() == 0);
        CHECK(calls_in(gzipped.out) == calls);
        const std::string fifo = dir.file(std::string("fifo-") + name);
        REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
        const std::string content = vztrace::testing::read_file(file);
        std::thread writer([&] {
            // A reader that closes early must fail the check, not kill the tests.
            sigset_t pipe_signal;
            sigemptyset(&pipe_signal);
            sigaddset(&pipe_signal, SIGPIPE);
            pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
            const int fd = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
            if (fd < 0) return;
            for (std::size_t at = 0; at < content.size();) {
                const ssize_t n = ::write(fd, content.data() + at, content.size() - at);
                if (n <= 0) break;
                at += static_cast<std::size_t>(n);
            }
            ::close(fd);
        });
        const auto piped = run_vztrace({"report", fifo, "--format", "json"});
        writer.join();
        INFO(piped.err);
        CHECK(piped.status() == 0);
        CHECK(calls_in(piped.out) == calls);
        CHECK(piped.err.empty());
    }
}

TEST_CASE("a gzipped Perfetto trace is read as it inflates: in members, cut short, damaged",
          "[perfetto]") {
    // It was inflated whole into memory first (a trace of gigabytes took as much).
    TempDir dir;
    const std::string trace = dir.file("t.pftrace");
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("programs/generators.py")}).status() == 0);
    const std::string bytes = vztrace::testing::read_file(trace);
    const auto report = [&](const std::string& file) {
        return run_vztrace({"report", file, "--format", "json"});
    };
    const auto whole = report(trace);
    REQUIRE(whole.status() == 0);
    // Two gzip members (`cat a.gz b.gz`), split inside a packet.
    write_gzip(dir.file("a.gz"), bytes.substr(0, bytes.size() / 2));
    write_gzip(dir.file("b.gz"), bytes.substr(bytes.size() / 2));
    dir.write("two.pftrace.gz", vztrace::testing::read_file(dir.file("a.gz")) +
                                    vztrace::testing::read_file(dir.file("b.gz")));
    const auto two = report(dir.file("two.pftrace.gz"));
    CHECK(two.status() == 0);
    const auto from_calls = [](const std::string& out) {  // the file's name and format aside
        return out.substr(std::min(out.find("\"calls\": "), out.size()));
    };
    CHECK(from_calls(two.out).size() > 1000);
    CHECK(from_calls(two.out) == from_calls(whole.out));
    // Cut short inside the compressed bytes.
    write_gzip(dir.file("t.pftrace.gz"), bytes);
    const std::string gzipped = vztrace::testing::read_file(dir.file("t.pftrace.gz"));
    dir.write("cut.pftrace.gz", gzipped.substr(0, gzipped.size() * 2 / 3));
    const auto cut = report(dir.file("cut.pftrace.gz"));
    CHECK(cut.status() != 0);
    CHECK(cut.err == "vztrace: error: " + dir.file("cut.pftrace.gz") +
                         " is damaged: gzip: unexpected end of file\n");
    // Damaged in the middle: the gzip check (CRC, or the deflate data itself) says so.
    std::string damaged = gzipped;
    for (std::size_t at = damaged.size() / 2; at < damaged.size() / 2 + 64; ++at)
        damaged[at] ^= 0x5a;
    dir.write("bad.pftrace.gz", damaged);
    const auto bad = report(dir.file("bad.pftrace.gz"));
    CHECK(bad.status() != 0);
    CHECK(bad.err.rfind("vztrace: error: " + dir.file("bad.pftrace.gz") + " is damaged: ", 0) == 0);
    CHECK(std::count(bad.err.begin(), bad.err.end(), '\n') == 1);
}

TEST_CASE("report and diff --match a name of any length", "[perfetto]") {
    // std::regex recursed once per character of the name: '.*mypkg' on a function named
    // with 60,000 characters (code a program generates) crashed both with SIGSEGV.
    TempDir dir;
    const std::string long_name(60000, 'a');
    dir.write("long.json", "{\"traceEvents\": [{\"ph\": \"X\", \"name\": \"" + long_name +
                               "\", \"pid\": 1, \"tid\": 1, \"ts\": 1, \"dur\": 2}, "
                               "{\"ph\": \"X\", \"name\": \"mypkg.f\", \"pid\": 1, "
                               "\"tid\": 1, \"ts\": 5, \"dur\": 1}]}");
    for (const char* pattern : {".*mypkg", "(a|b)+c", "(.)*x", "x|.*z", "^a+$"}) {
        INFO(pattern);
        const auto report =
            run_vztrace({"report", dir.file("long.json"), "--match", pattern, "--format", "json"});
        REQUIRE(report.status() == 0);
        const bool long_matches = std::string_view(pattern) == "^a+$";
        CHECK((report.out.find(long_name) != std::string::npos) == long_matches);
        CHECK((report.out.find("mypkg.f") != std::string::npos) ==
              (std::string_view(pattern) == ".*mypkg"));
        const auto diff =
            run_vztrace({"diff", dir.file("long.json"), dir.file("long.json"), "--match", pattern});
        CHECK(diff.status() == 0);
    }
}

TEST_CASE("report says in one line why it cannot read a trace, with its own status", "[perfetto]") {
    TempDir dir;
    dir.write("garbage.txt", "this is not a trace\n");
    dir.write("no-events.json", "{\"metadata\": 1}");
    // A list of no events was read as an empty trace, status 0 (found by hunt AK).
    dir.write("strings.json", "[\"not\", \"a\", \"trace\"]");
    dir.write("numbers.json", "{\"traceEvents\": [1, 2, 3]}");
    dir.write("cut.json", std::string(kVizTracerJson).substr(0, 200));
    dir.write("damaged.pftrace",
              std::string("\x0a\x05\x08\x01\x10\x02\x0a\xff\xff\xff\xff\x0f", 12));
    // A short text file that starts with a newline begins as a Perfetto packet does: it was
    // read as a trace cut inside its first packet, "0 calls", status 0.
    dir.write("notes.py", "\nimport os\nprint(1)\n");
    std::filesystem::create_directory(dir.file("a-directory"));
    struct Case {
        std::string file;
        int status;
    };
    // Section names must not change between Catch's passes: the file's name, not its path.
    const Case cases[] = {{"missing.pftrace", 66}, {"a-directory", 66},  {"garbage.txt", 65},
                          {"no-events.json", 65},  {"cut.json", 65},     {"damaged.pftrace", 65},
                          {"notes.py", 65},        {"strings.json", 65}, {"numbers.json", 65}};
    for (const Case& c : cases) {
        DYNAMIC_SECTION(c.file) {
            const auto result = run_vztrace({"report", dir.file(c.file)});
            CHECK(result.status() == c.status);
            CHECK(result.out.empty());
            CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
            CHECK(result.err.find(dir.file(c.file)) != std::string::npos);
        }
    }
    SECTION("JSON nested deeper than the parser goes") {
        // Valid JSON from another tool was said to be damaged with simdjson's words alone.
        std::string deep =
            "{\"traceEvents\": [{\"ph\": \"X\", \"name\": \"f\", \"pid\": 1, "
            "\"tid\": 1, \"ts\": 1, \"dur\": 2, \"args\": {\"a\": ";
        deep += std::string(2000, '[') + std::string(2000, ']') + "}}]}";
        dir.write("deep.json", deep);
        const auto result = run_vztrace({"report", dir.file("deep.json")});
        CHECK(result.status() == 65);
        CHECK(contains(result.err, "nest deeper than the 1024 levels vztrace reads"));
    }
    SECTION("an empty list of events is an empty trace") {
        dir.write("empty.json", "[]");
        const auto result = run_vztrace({"report", dir.file("empty.json")});
        INFO(result.err);
        CHECK(result.status() == 0);
        CHECK(contains(result.out, "0 calls"));
    }
    SECTION("bad options") {
        for (const std::vector<std::string>& args :
             {std::vector<std::string>{"report"},
              {"report", dir.file("garbage.txt"), "--by", "host"},
              {"report", dir.file("garbage.txt"), "--match", "(unclosed"}}) {
            const auto result = run_vztrace(args);
            CHECK(result.status() == 2);
            CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
        }
    }
}

TEST_CASE("report reads JSON with escapes of lone surrogates, as Python's json writes them") {
    // Python's json.dump writes a file name that is not UTF-8 (caf\xe9.py) with a lone
    // surrogate escape: valid JSON that was refused as damaged (65).
    TempDir dir;
    dir.write("lone.json", R"json([
 {"pid": 1, "tid": 1, "ts": 1, "dur": 5, "ph": "X", "name": "f (/tmp/caf\udce9.py:1)"},
 {"pid": 1, "tid": 1, "ts": 7, "dur": 1, "ph": "X", "name": "g \ud83d\ude00 \\udce9 \ud800"}])json");
    const auto text = run_vztrace({"report", dir.file("lone.json")});
    INFO(text.err);
    REQUIRE(text.status() == 0);
    CHECK(text.out.find("f (/tmp/caf\xef\xbf\xbd.py:1)") != std::string::npos);
    // A pair stays one character, an escaped backslash stays, a lone high one is replaced.
    CHECK(text.out.find("g \xf0\x9f\x98\x80 \\udce9 \xef\xbf\xbd") != std::string::npos);
    dir.write("bad.json", R"json([{"pid": 1, "ph": "X", "name": "f\uZZZZ"}])json");
    CHECK(run_vztrace({"report", dir.file("bad.json")}).status() == 65);
}

TEST_CASE("report reads pids and tids written as strings, each its own") {
    // Before: they all read as 0, and two threads' overlapping calls nested as one's.
    TempDir dir;
    dir.write("named.json", R"json([
 {"ph": "X", "name": "a", "ts": 1, "dur": 5, "pid": "p1", "tid": "t1"},
 {"ph": "X", "name": "b", "ts": 1, "dur": 5, "pid": "p2", "tid": "t2"},
 {"ph": "X", "name": "c", "ts": 2, "dur": 1, "pid": "12", "tid": "12"}])json");
    const auto text = run_vztrace({"report", dir.file("named.json"), "--format", "json"});
    INFO(text.err);
    REQUIRE(text.status() == 0);
    CHECK(text.out.find("\"threads\": 3,") != std::string::npos);
    CHECK(text.out.find("\"processes\": 3,") != std::string::npos);
    const auto by = run_vztrace({"report", dir.file("named.json"), "--by", "process"});
    CHECK(by.out.find("process 12") != std::string::npos);
}

TEST_CASE("report reads JSON that opens with any amount of whitespace") {
    // Only the first 64 bytes were looked at: JSON indented further in was "not a trace".
    TempDir dir;
    dir.write("plain.json", std::string(kVizTracerJson));
    dir.write("spaced.json", std::string(200, ' ') + "\n\t\r\n" + std::string(kVizTracerJson));
    dir.write("blank.json", std::string(200, '\n'));
    const auto plain = run_vztrace({"report", dir.file("plain.json")});
    REQUIRE(plain.status() == 0);
    const auto spaced = run_vztrace({"report", dir.file("spaced.json")});
    INFO(spaced.err);
    CHECK(spaced.status() == 0);
    // The same report but for its first line, which names the file.
    CHECK(spaced.out.substr(spaced.out.find('\n')) == plain.out.substr(plain.out.find('\n')));
    const auto blank = run_vztrace({"report", dir.file("blank.json")});
    CHECK(blank.status() == 65);
    CHECK(std::count(blank.err.begin(), blank.err.end(), '\n') == 1);
}

TEST_CASE("report spans a JSON trace whose times are all before 0 from its first to its last") {
    // The span was measured to 0, not to the last end: 5 ms here instead of 3.
    TempDir dir;
    dir.write("negative.json", R"({"traceEvents": [
        {"ph": "X", "pid": 1, "tid": 1, "ts": -5000, "dur": 1000, "name": "f"},
        {"ph": "X", "pid": 1, "tid": 1, "ts": -3000, "dur": 1000, "name": "g"}]})");
    const auto result = run_vztrace({"report", dir.file("negative.json")});
    INFO(result.err);
    REQUIRE(result.status() == 0);
    CHECK(result.out.find("2 calls in 1 thread of 1 process, over 3.000 ms") != std::string::npos);
}

TEST_CASE("report reads a trace cut short by a killed writer, and says so", "[perfetto]") {
    TempDir dir;
    const std::string trace = dir.file("whole.pftrace");
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("programs/generators.py")}).status() == 0);
    const std::string bytes = vztrace::testing::read_file(trace);
    // Cut one byte into the first packet that does not end before two thirds of the file:
    // a cut at two thirds itself can fall between packets (it did under ASan).
    vztrace::format::PerfettoReader whole_packets;
    whole_packets.feed(std::string_view(bytes).substr(0, bytes.size() * 2 / 3));
    whole_packets.finish();
    const std::size_t cut = static_cast<std::size_t>(whole_packets.whole_bytes()) + 1;
    REQUIRE(cut < bytes.size());
    dir.write("cut.pftrace", bytes.substr(0, cut));
    const auto result = run_vztrace({"report", dir.file("cut.pftrace"), "--format", "json"});
    CHECK(result.status() == 0);
    CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
    CHECK(result.err.find("stops inside a packet") != std::string::npos);
    CHECK(result.out.find("\"truncated\": true") != std::string::npos);

    // Cut between two packets, as a writer killed between two writes leaves it (the usual
    // case: it writes whole chunks): the calls it had begun and not ended tell. It was read
    // as a whole trace, with no word.
    dir.write("cut-between.pftrace", bytes.substr(0, cut - 1));
    const auto between =
        run_vztrace({"report", dir.file("cut-between.pftrace"), "--format", "json"});
    CHECK(between.status() == 0);
    CHECK(std::count(between.err.begin(), between.err.end(), '\n') == 1);
    CHECK(between.err.find("never ended (its writer was killed?)") != std::string::npos);
    CHECK(between.out.find("\"truncated\": true") != std::string::npos);
    // The whole trace ends every call it begins: no word.
    const auto whole = run_vztrace({"report", trace, "--format", "json"});
    CHECK(whole.err.empty());
    CHECK(whole.out.find("\"truncated\": false") != std::string::npos);
}

namespace {

// Where each top-level packet of a Perfetto trace begins (field 1, length-delimited).
std::vector<std::size_t> packet_starts(std::string_view bytes) {
    std::vector<std::size_t> starts;
    std::size_t at = 0;
    while (at < bytes.size() && bytes[at] == '\x0a') {
        starts.push_back(at);
        std::uint64_t length = 0;
        int shift = 0;
        ++at;
        while (at < bytes.size()) {
            const auto byte = static_cast<unsigned char>(bytes[at++]);
            length |= std::uint64_t{byte & 0x7fu} << shift;
            shift += 7;
            if (byte < 0x80) break;
        }
        at += length;
    }
    return starts;
}

}  // namespace

TEST_CASE("a trace cut between two packets where no call was open is read with a warning",
          "[perfetto]") {
    // Found by hunt AA: the threads' calls are written a block at a time, so a cut between
    // blocks (a copy cut short, a writer killed between writes) leaves no call open; it was
    // read as a whole trace, with no word, missing a thread's calls.
    TempDir dir;
    const std::string trace = dir.file("whole.pftrace");
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("programs/generators.py")}).status() == 0);
    const std::string bytes = vztrace::testing::read_file(trace);
    const auto starts = packet_starts(bytes);
    REQUIRE(starts.size() > 3);
    // Everything but the closing metadata, its last two packets (as TraceAttributes, then
    // as ChromeMetadata): every call is ended there.
    dir.write("cut.pftrace", bytes.substr(0, starts[starts.size() - 2]));
    const auto cut = run_vztrace({"report", dir.file("cut.pftrace"), "--format", "json"});
    CHECK(cut.status() == 0);
    CHECK(std::count(cut.err.begin(), cut.err.end(), '\n') == 1);
    CHECK(cut.err.find("stops before the metadata that ends a recording's trace") !=
          std::string::npos);
    CHECK(cut.out.find("\"truncated\": true") != std::string::npos);
    // The whole trace: no word.
    const auto whole = run_vztrace({"report", trace, "--format", "json"});
    CHECK(whole.err.empty());
    CHECK(whole.out.find("\"truncated\": false") != std::string::npos);
    // An export of the cut trace is a trace of what was read, whole in itself: no word.
    const std::string exported = dir.file("exported.pftrace");
    const auto export_cut = run_vztrace({"export", dir.file("cut.pftrace"), "-o", exported});
    CHECK(export_cut.status() == 0);
    CHECK(std::count(export_cut.err.begin(), export_cut.err.end(), '\n') == 1);
    const auto reread = run_vztrace({"report", exported});
    CHECK(reread.status() == 0);
    CHECK(reread.err.empty());
}

// What the recorder left out (--max-size, a killed child, a ring, VizTracer's full buffer)
// is said by every subcommand that reads the trace: report in its output (a line under its
// header, fields in JSON), the others on stderr. Before, report gave such a trace's
// numbers as if it were whole.
TEST_CASE("report puts in its output what the recorder left out of the trace; diff warns") {
    TempDir dir;
    const std::string capped = dir.file(vztrace::testing::trace_name("capped"));
    REQUIRE(
        run_vztrace({"--quiet", "--max-size", "3M", "-o", capped, script("heavy.py")}).status() ==
        0);
    const std::string dropped = load_trace(capped).metadata.at("dropped_events");
    REQUIRE(std::stoll(dropped) > 0);
    const std::string gap = dropped + " events were not recorded: the trace reached its --max-size";

    const auto text = run_vztrace({"report", capped, "--limit", "1"});
    CHECK(text.status() == 0);
    CHECK(text.err.empty());  // said once, in the output
    const std::string first_line = text.out.substr(0, text.out.find('\n'));
    CHECK(first_line.find(", incomplete): ") != std::string::npos);
    CHECK(text.out.find("\nincomplete: " + gap + "\n") != std::string::npos);

    const auto markdown = run_vztrace({"report", capped, "--format", "markdown"});
    CHECK(markdown.out.find("\n\n> **incomplete:** " + gap + "\n") != std::string::npos);

    Report report;
    report_json(report, {capped});
    CHECK(bool(report.root["incomplete"]) == true);
    REQUIRE(report.root["gaps"].get_array().size() == 1);
    CHECK(std::string_view(report.root["gaps"].at(0)["text"]) == gap);
    CHECK(bool(report.root["gaps"].at(0)["warning"]) == true);
    CHECK(std::string_view(report.root["recorder"]) == "vztrace");
    CHECK(std::string_view(report.root["recording"]["dropped_events"]) == dropped);
    CHECK(!std::string_view(report.root["recording"]["clock"]).empty());

    // diff prints no such lines of its own: stderr has one per trace.
    const auto diff = run_vztrace({"diff", capped, capped});
    CHECK(diff.status() == 0);
    const std::string warning = "vztrace: warning: " + capped + " is incomplete: " + gap + "\n";
    CHECK(diff.err == warning + warning);

    // A whole trace: nothing said, nothing flagged.
    const std::string whole = dir.file(vztrace::testing::trace_name("whole"));
    REQUIRE(run_vztrace({"--quiet", "-o", whole, script("heavy.py")}).status() == 0);
    Report complete;
    report_json(complete, {whole});
    CHECK(bool(complete.root["incomplete"]) == false);
    CHECK(complete.root["gaps"].get_array().size() == 0);
    CHECK(std::string_view(complete.root["recording"]["dropped_events"]) == "0");
    CHECK(run_vztrace({"diff", whole, whole}).err.empty());
}

TEST_CASE("report names the process a killed child left incomplete, and notes a ring's cut") {
    TempDir dir;
    const std::string killed = dir.file(vztrace::testing::trace_name("killed"));
    REQUIRE(run_vztrace({"--quiet", "-o", killed, script("tree/sigkill_worker.py")}).status() == 0);
    const std::string pids = load_trace(killed).metadata.at("incomplete_pids");
    REQUIRE(pids.size() > 2);
    const std::string pid = pids.substr(1, pids.size() - 2);
    const auto report = run_vztrace({"report", killed, "--limit", "1"});
    CHECK(report.out.find("\nincomplete: process " + pid +
                          " was killed, crashed or outlived the root's wait: its calls after the "
                          "last it had written are not in the trace\n") != std::string::npos);
    const auto exported = run_vztrace({"export", killed, "-o", dir.file("killed.pstats")});
    CHECK(exported.status() == 0);
    CHECK(exported.err.find(" is incomplete: process " + pid + " was killed, crashed or") !=
          std::string::npos);

    // A ring keeps what it was asked to: a note, and the trace is not called incomplete.
    const std::string ring = dir.file(vztrace::testing::trace_name("ring"));
    REQUIRE(run_vztrace({"--quiet", "--ring", "4M", "-o", ring, script("ring.py")}).status() == 0);
    const std::string overwritten = load_trace(ring).metadata.at("overwritten_events");
    const auto noted = run_vztrace({"report", ring, "--limit", "1"});
    CHECK(noted.out.substr(0, noted.out.find('\n')).find("incomplete") == std::string::npos);
    CHECK(noted.out.find("\nnote: it holds the newest events alone (--ring): " + overwritten +
                         " older events were overwritten\n") != std::string::npos);
}

TEST_CASE("report says when VizTracer's buffer was full", "[perfetto]") {
    TempDir dir;
    std::string full = kVizTracerJson;
    const std::string flag = "\"overflow\": false";
    full.replace(full.find(flag), flag.size(), "\"overflow\": true");
    dir.write("full.json", full);
    dir.write("kept.json", kVizTracerJson);
    const auto report = run_vztrace({"report", dir.file("full.json")});
    CHECK(report.status() == 0);
    CHECK(report.out.find("\nincomplete: VizTracer's buffer was full: it kept the newest entries "
                          "only (--tracer_entries), the older ones are not in the trace\n") !=
          std::string::npos);
    Report kept;
    report_json(kept, {dir.file("kept.json")});
    CHECK(bool(kept.root["incomplete"]) == false);
    CHECK(std::string_view(kept.root["recorder"]) == "viztracer");
    CHECK(std::string_view(kept.root["recording"]["version"]) == "1.1.1");
    CHECK(std::string_view(kept.root["recording"]["overflow"]) == "false");
}

namespace {

struct DiffFunction {
    std::uint64_t base_calls = 0;
    std::uint64_t new_calls = 0;
    std::int64_t base_self_ns = 0;
    std::int64_t new_self_ns = 0;
    bool appears = false;
    bool vanishes = false;
};

std::map<std::string, DiffFunction> diff_functions(const std::string& json) {
    simdjson::dom::parser parser;
    std::map<std::string, DiffFunction> result;
    for (simdjson::dom::element f : parser.parse(json)["functions"].get_array()) {
        DiffFunction d;
        d.base_calls = std::uint64_t(f["base_calls"]);
        d.new_calls = std::uint64_t(f["new_calls"]);
        d.base_self_ns = std::int64_t(f["base_self_ns"]);
        d.new_self_ns = std::int64_t(f["new_self_ns"]);
        d.appears = bool(f["appears"]);
        d.vanishes = bool(f["vanishes"]);
        result[std::string(std::string_view(f["name"]))] = d;
    }
    return result;
}

}  // namespace

TEST_CASE("diff compares two runs by function: exact calls, times, what appears") {
    TempDir dir;
    const std::string base = dir.file(vztrace::testing::trace_name("base"));
    const std::string now = dir.file(vztrace::testing::trace_name("new"));
    const std::string program = script("diff_prog.py");
    REQUIRE(run_vztrace({"--quiet", "-o", base, program, "100"}).status() == 0);
    REQUIRE(run_vztrace({"--quiet", "-o", now, program, "400", "extra"}).status() == 0);
    const auto result =
        run_vztrace({"diff", base, now, "--match", "diff_prog", "--format", "json", "--limit=0"});
    INFO(result.err);
    REQUIRE(result.status() == 0);
    auto functions = diff_functions(result.out);
    const std::string genexpr = "work.<locals>.<genexpr> (" + program + ":7)";
    CHECK(functions[genexpr].base_calls == 5 * 101);  // a generator resumes once per item
    CHECK(functions[genexpr].new_calls == 5 * 401);
    CHECK(functions["work (" + program + ":6)"].base_calls == 5);
    CHECK(functions["work (" + program + ":6)"].new_calls == 5);
    const auto extra = functions["extra (" + program + ":10)"];
    CHECK(extra.appears);
    CHECK(extra.base_calls == 0);
    CHECK(extra.new_calls == 1);
    CHECK(functions.size() == 4);  // and <module>

    SECTION("--fail-on-new-calls fails on calls that grew or appeared, with one line") {
        const auto gated =
            run_vztrace({"diff", base, now, "--match", "diff_prog", "--fail-on-new-calls"});
        CHECK(gated.status() == 4);
        CHECK(std::count(gated.err.begin(), gated.err.end(), '\n') == 1);
        CHECK(gated.err.find("2 functions are called more often") != std::string::npos);
        // Both gates tripped: each says so (the calls' went unsaid), the status is time's.
        const auto both = run_vztrace(
            {"diff", base, now, "--match", "diff_prog", "--fail-on-new-calls", "--fail-over=1"});
        CHECK(both.status() == 1);
        CHECK(std::count(both.err.begin(), both.err.end(), '\n') == 2);
        CHECK(both.err.find("over --fail-over 1%") != std::string::npos);
        CHECK(both.err.find("2 functions are called more often") != std::string::npos);
        const auto same = run_vztrace({"diff", base, base, "--fail-on-new-calls", "--fail-over=0"});
        CHECK(same.status() == 0);
        CHECK(same.err.empty());
        CHECK(same.out.find("(+0.0%)") != std::string::npos);
    }
}

TEST_CASE("diff --fail-over gates on the growth of time, of all or of the matched functions",
          "[perfetto]") {
    // Every duration of the new trace is twice the base's, c() is gone and d() is new: the
    // time in calls grows by exactly 100%.
    TempDir dir;
    dir.write("base.json", kVizTracerJson);
    dir.write("new.json", R"json({"traceEvents": [
 {"pid": 7, "tid": 8, "ts": 1000.0, "dur": 200.0, "name": "a (viz.py:1)", "ph": "X"},
 {"pid": 7, "tid": 8, "ts": 1020.0, "dur": 100.0, "name": "b (viz.py:5)", "ph": "X"},
 {"pid": 7, "tid": 8, "ts": 1040.0, "dur": 20.0, "name": "a (viz.py:1)", "ph": "X"},
 {"pid": 7, "tid": 8, "ts": 1400.0, "dur": 61.0, "name": "d (viz.py:20)", "ph": "X"}]})json");
    const std::string base = dir.file("base.json");
    const std::string now = dir.file("new.json");
    const auto json = run_vztrace({"diff", base, now, "--format", "json"});
    REQUIRE(json.status() == 0);
    auto functions = diff_functions(json.out);
    CHECK(functions["a (viz.py:1)"].base_self_ns == 60000);
    CHECK(functions["a (viz.py:1)"].new_self_ns == 120000);
    CHECK(functions["c (viz.py:9)"].vanishes);
    CHECK(functions["d (viz.py:20)"].appears);
    CHECK(json.out.find("\"growth_percent\": 100.000") != std::string::npos);
    CHECK(run_vztrace({"diff", base, now, "--fail-over", "99"}).status() == 1);
    CHECK(run_vztrace({"diff", base, now, "--fail-over", "100"}).status() == 0);
    // Only b(): 50 us -> 100 us.
    const auto b = run_vztrace({"diff", base, now, "--match", "^b ", "--fail-over", "50"});
    CHECK(b.status() == 1);
    CHECK(b.err.find("matched functions' time grew by 100.0%") != std::string::npos);
    // The header's calls are the matched functions' too (it said the whole traces': 4 -> 4).
    CHECK(b.out.find("; calls 1 -> 1;") != std::string::npos);
    const auto a_d = run_vztrace({"diff", base, now, "--match", "^(a|d) "});
    CHECK(a_d.out.find("; calls 2 -> 3;") != std::string::npos);
    // Only d(), new: from no time to 61 us. The gate never fired (no base to grow from).
    const auto d = run_vztrace({"diff", base, now, "--match", "^d ", "--fail-over", "1000"});
    CHECK(d.status() == 1);
    CHECK(d.err.find("grew from none to 0.061 ms") != std::string::npos);
    // In JSON such growth has no percentage (it read 0.000).
    const auto d_json = run_vztrace({"diff", base, now, "--match", "^d ", "--format", "json"});
    CHECK(d_json.out.find("\"growth_percent\": null,") != std::string::npos);
    const auto markdown = run_vztrace({"diff", base, now, "--format", "markdown"});
    CHECK(markdown.out.find("| `d (viz.py:20)` | new: 1 |") != std::string::npos);
    CHECK(markdown.out.find("| `c (viz.py:9)` | gone: 1 |") != std::string::npos);
    SECTION("bad input") {
        const auto missing = run_vztrace({"diff", base, dir.file("nope.json")});
        CHECK(missing.status() == 66);
        CHECK(std::count(missing.err.begin(), missing.err.end(), '\n') == 1);
        CHECK(run_vztrace({"diff", base}).status() == 2);
        CHECK(run_vztrace({"diff", base, now, "--fail-over", "-5"}).status() == 2);
    }
}

// [unsanitized]: not run against a sanitized vztrace, whose allocator ends the process where
// memory is refused or keeps freed memory in quarantine (tests/CMakeLists.txt).
TEST_CASE("a trace larger than the memory the system gives is one line and status 71",
          "[unsanitized]") {
    // A gzipped JSON trace is read whole: 400 MB of it under a 300 MB limit on the address
    // space ended report with std::bad_alloc and SIGABRT (status 134).
    TempDir dir;
    const std::string path = dir.file("large.json.gz");
    gzFile file = gzopen(path.c_str(), "wb1");
    REQUIRE(file != nullptr);
    const std::string head = "{\"traceEvents\": [";
    const std::string spaces(1 << 20, ' ');
    REQUIRE(gzwrite(file, head.data(), static_cast<unsigned>(head.size())) > 0);
    for (int i = 0; i < 400; ++i) {
        REQUIRE(gzwrite(file, spaces.data(), static_cast<unsigned>(spaces.size())) > 0);
    }
    REQUIRE(gzwrite(file, "]}", 2) == 2);
    REQUIRE(gzclose(file) == Z_OK);
    const std::vector<std::vector<std::string>> tools = {
        {"report", path}, {"export", path, "-o", dir.file("out.pftrace")}};
    for (const auto& tool : tools) {
        INFO(tool[0]);
        std::vector<std::string> command = {"/bin/sh", "-c", "ulimit -v 300000 && exec \"$@\"",
                                            "sh", kVztrace};
        command.insert(command.end(), tool.begin(), tool.end());
        const auto result = vztrace::testing::run_process(command);
        CHECK(result.status() == 71);
        CHECK(result.err == "vztrace: error: out of memory\n");
        CHECK(result.out.empty());
    }
}

TEST_CASE("compressed packets are read in the memory of their largest packet, not of all",
          "[unsanitized]") {
    // Perfetto's compressed_packets were inflated whole before their packets were read: 400
    // MB of packets in one (deflated to 0.4 MB) ended report under a 300 MB limit on the
    // address space with "out of memory", and 1 MB of deflated zeros took 1 GB.
    TempDir dir;
    const std::string trace = dir.file("t.pftrace");
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("programs/generators.py")}).status() == 0);
    const std::string calls = vztrace::testing::read_file(trace);
    // 6,400 packets of 64 KB that carry nothing anyone reads, then the trace's own.
    namespace pf = vztrace::format::perfetto;
    namespace wire = vztrace::format::wire;
    wire::ProtoMessage padding;
    padding.bytes(9999, std::string(std::size_t{64} << 10, 'x'));
    wire::ProtoMessage padding_packet;
    padding_packet.message(pf::trace::kPacket, padding);
    z_stream stream{};
    REQUIRE(deflateInit(&stream, 1) == Z_OK);
    std::string deflated;
    const auto deflate_more = [&](const std::string& in, int flush) {
        stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        stream.avail_in = static_cast<uInt>(in.size());
        char block[1 << 16];
        do {
            stream.next_out = reinterpret_cast<Bytef*>(block);
            stream.avail_out = sizeof block;
            REQUIRE(deflate(&stream, flush) != Z_STREAM_ERROR);
            deflated.append(block, sizeof block - stream.avail_out);
        } while (stream.avail_out == 0);
    };
    for (int i = 0; i < 6400; ++i) deflate_more(padding_packet.data(), Z_NO_FLUSH);
    deflate_more(calls, Z_FINISH);
    REQUIRE(deflateEnd(&stream) == Z_OK);
    wire::ProtoMessage packet;
    packet.bytes(pf::packet::kCompressedPackets, deflated);
    wire::ProtoMessage outer;
    outer.message(pf::trace::kPacket, packet);
    dir.write("big.pftrace", outer.data());
    const auto limited = [&](const std::string& file) {
        return vztrace::testing::run_process({"/bin/sh", "-c", "ulimit -v 300000 && exec \"$@\"",
                                              "sh", kVztrace, "report", file, "--format", "json"});
    };
    const auto plain = limited(trace);
    REQUIRE(plain.status() == 0);
    const auto big = limited(dir.file("big.pftrace"));
    CHECK(big.err.empty());
    REQUIRE(big.status() == 0);
    const auto from_calls = [](const std::string& out) {  // the file's name and size aside
        return out.substr(std::min(out.find("\"calls\": "), out.size()));
    };
    CHECK(from_calls(big.out).size() > 1000);
    CHECK(from_calls(big.out) == from_calls(plain.out));
}

TEST_CASE("diff and combine say one line when an input fails, whatever the others lack") {
    // What the first trace lacked was said before the second's error: two lines.
    TempDir dir;
    dir.write("gap.json",
              "{\"traceEvents\": [{\"ph\": \"X\", \"name\": \"f\", \"pid\": 1, \"tid\": 1, \"ts\": "
              "1, \"dur\": 2}], \"vztrace_metadata\": {\"incomplete_pids\": [5]}}");
    const std::string gap = dir.file("gap.json");
    const auto one_line = [](const vztrace::testing::ProcessResult& result) {
        INFO(result.err);
        CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
        CHECK(result.err.starts_with("vztrace: error: "));
    };
    const auto diff = run_vztrace({"diff", gap, dir.file("nope.json")});
    CHECK(diff.status() == 66);
    one_line(diff);
    const auto combine = run_vztrace({"combine", "-o", dir.file("c.pftrace"), gap, gap});
    CHECK(combine.status() == 2);  // no CLOCK_REALTIME to line them up by
    one_line(combine);
    // Where nothing fails, what they lack is still said.
    const auto aligned =
        run_vztrace({"combine", "--align", "start", "-o", dir.file("c.pftrace"), gap, gap});
    CHECK(aligned.status() == 0);
    CHECK(aligned.err.find("gap.json is incomplete: process 5 was killed") != std::string::npos);
}
