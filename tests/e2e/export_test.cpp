// `vztrace export`: a trace in the formats other tools read, checked by those formats'
// own readers where one is here (Python's pstats) and against the trace's own calls.
#include <simdjson.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "e2e/e2e.hpp"

using namespace vztrace::e2e;
using vztrace::testing::load_trace;
using vztrace::testing::TempDir;
using vztrace::testing::Trace;

namespace {

std::map<std::string, std::size_t> counts_of(const Trace& trace) {
    std::map<std::string, std::size_t> counts;
    for (const auto& slice : trace.slices) counts[slice.name]++;
    return counts;
}

struct Exported {
    TempDir dir;
    std::string trace;
    Trace loaded;
    explicit Exported(const std::string& program) {
        trace = dir.file(vztrace::testing::trace_name("trace"));
        const auto run = run_vztrace({"--quiet", "-o", trace, program});
        REQUIRE(run.status() == 0);
        loaded = load_trace(trace);
    }
    std::string to(const std::string& name) {
        const auto result = run_vztrace({"export", trace, "-o", dir.file(name)});
        INFO(result.err);
        REQUIRE(result.status() == 0);
        CHECK(result.out.empty());
        return dir.file(name);
    }
};

}  // namespace

TEST_CASE("export .pstats loads in Python's pstats with the trace's call counts") {
    Exported exported(script("fib5.py"));
    const std::string stats = exported.to("fib.pstats");
    // The embedded python's own pstats reads it: each function's calls, as "file:line name
    // primitive calls callers".
    const auto result = vztrace::testing::run_process(
        {kPython, "-c",
         "import pstats, sys\n"
         "s = pstats.Stats(sys.argv[1])\n"
         "for (f, l, n), (cc, nc, tt, ct, callers) in sorted(s.stats.items()):\n"
         "    print(f'{f}:{l}\\t{n}\\t{nc} {cc} {len(callers)} {tt <= ct + 1e-9}')\n"
         "print(f'total\\t\\t{s.total_calls}')\n",
         stats});
    INFO(result.err);
    REQUIRE(result.status() == 0);
    std::map<std::string, std::string> lines;
    std::istringstream in(result.out);
    for (std::string line; std::getline(in, line);) {
        const auto second_tab = line.find('\t', line.find('\t') + 1);
        lines[line.substr(0, second_tab)] = line.substr(second_tab + 1);
    }
    const std::string fib = script("fib5.py") + ":1\tfib";
    REQUIRE(lines.count(fib) == 1);
    // fib(5): 15 calls, one of them primitive (not below another fib), called from
    // <module> and from fib; its own time within its cumulative time.
    CHECK(lines[fib] == "15 1 2 True");
    CHECK(lines["total\t"] == std::to_string(exported.loaded.slices.size()));
    CHECK(lines.count("~:0\t<built-in method builtins.print>") == 1);
}

TEST_CASE("export .pstats keys a name holding a place by the function's own place") {
    // Split at the first " (": ('x.py:1) (/.../paren_names.py', 5, 'paren'), and the span
    // as a function at line 2 of a file named 'phase'.
    Exported exported(script("paren_names.py"));
    const std::string stats = exported.to("paren.pstats");
    const auto result = vztrace::testing::run_process(
        {kPython, "-c",
         "import pstats, sys\n"
         "for key in sorted(pstats.Stats(sys.argv[1]).stats): print(key)\n",
         stats});
    INFO(result.err);
    REQUIRE(result.status() == 0);
    CHECK(contains(result.out, "('" + script("paren_names.py") + "', 5, 'paren (x.py:1)')\n"));
    CHECK(contains(result.out, "('~', 0, '<built-in method step (phase:2)>')\n"));
    CHECK(contains(result.out, "('', 1, 'from_empty')\n"));  // hunt AS
}

TEST_CASE("export .pstats gives each caller's calls as cProfile does, total then primitive") {
    // The callers' tuples had primitive calls first, as a function's own have them: pstats
    // showed fib <- fib as "0/14".
    Exported exported(script("fib5.py"));
    const std::string stats = exported.to("fib.pstats");
    TempDir dir;
    const std::string reference = dir.file("reference.prof");
    REQUIRE(vztrace::testing::run_process(
                {kPython, "-m", "cProfile", "-o", reference, script("fib5.py")})
                .status() == 0);
    // fib's callers by name: calls, primitive calls (the caller-callee pair not already
    // open), and whether the cumulative time is above 0.
    const auto callers_of_fib = [](const std::string& path) {
        const auto result = vztrace::testing::run_process(
            {kPython, "-c",
             "import pstats, sys\n"
             "s = pstats.Stats(sys.argv[1])\n"
             "for (f, l, n), (cc, nc, tt, ct, callers) in sorted(s.stats.items()):\n"
             "    if n != 'fib': continue\n"
             "    for (cf, cl, cn), (c_nc, c_cc, c_tt, c_ct) in sorted(callers.items()):\n"
             "        print(cn, c_nc, c_cc, c_ct > 0)\n",
             path});
        INFO(result.err);
        REQUIRE(result.status() == 0);
        return result.out;
    };
    CHECK(callers_of_fib(stats) == "<module> 1 1 True\nfib 14 2 True\n");
    CHECK(callers_of_fib(stats) == callers_of_fib(reference));
}

TEST_CASE("export and combine say what they leave out of a trace besides its calls") {
    // They carried the calls alone and said nothing of the instants, counters and arguments
    // they left out.
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("marks"));
    REQUIRE(
        run_vztrace({"--quiet", "--log-func-args", "-o", trace, script("api/marks.py")}).status() ==
        0);
    const auto exported = run_vztrace({"export", trace, "-o", dir.file("out.json")});
    REQUIRE(exported.status() == 0);
    INFO(exported.err);
    CHECK(std::count(exported.err.begin(), exported.err.end(), '\n') == 1);
    CHECK(exported.err.rfind(
              "vztrace: warning: export carries calls alone; left out of " + trace + ": ", 0) == 0);
    CHECK(contains(exported.err, " instants"));
    CHECK(contains(exported.err, " counter values"));
    // In either format: JSON's args were not counted, and the warning said nothing of them.
    CHECK(contains(exported.err, "the arguments or results of "));
    const auto combined = run_vztrace(
        {"combine", trace, dir.file("out.json"), "--align", "start", "-o", dir.file("c.pftrace")});
    REQUIRE(combined.status() == 0);
    CHECK(std::count(combined.err.begin(), combined.err.end(), '\n') == 2);  // + a shared pid
    CHECK(contains(combined.err,
                   "vztrace: warning: combine carries calls alone; left out of " + trace + ": "));
    {
        INFO("a JSON trace's events of other kinds are counted too");
        // VizTracer's objects (N, O, D), async slices (b, e), flows (s, f) and marks (R)
        // went without a word (hunt AT).
        dir.write("objects.json", R"json({"traceEvents": [
 {"ph": "X", "pid": 1, "tid": 1, "ts": 0, "dur": 5, "name": "call"},
 {"ph": "N", "pid": 1, "tid": 1, "ts": 1, "name": "obj", "id": "0x1"},
 {"ph": "O", "pid": 1, "tid": 1, "ts": 2, "name": "obj", "id": "0x1", "args": {"snapshot": {}}},
 {"ph": "D", "pid": 1, "tid": 1, "ts": 3, "name": "obj", "id": "0x1"},
 {"ph": "b", "pid": 1, "tid": 1, "ts": 1, "name": "async", "id": 2, "cat": "c"},
 {"ph": "e", "pid": 1, "tid": 1, "ts": 4, "name": "async", "id": 2, "cat": "c"},
 {"ph": "s", "pid": 1, "tid": 1, "ts": 1, "name": "flow", "id": 3},
 {"ph": "f", "pid": 1, "tid": 1, "ts": 4, "name": "flow", "id": 3},
 {"ph": "R", "pid": 1, "tid": 1, "ts": 2, "name": "mark"}
]})json");
        const auto objects =
            run_vztrace({"export", dir.file("objects.json"), "-o", dir.file("o.pftrace")});
        REQUIRE(objects.status() == 0);
        CHECK(objects.err == "vztrace: warning: export carries calls alone; left out of " +
                                 dir.file("objects.json") +
                                 ": 8 events of other kinds (objects', async slices, flows...)\n");
    }
    {
        INFO("a trace of calls alone exports without a word");
        const std::string plain = dir.file(vztrace::testing::trace_name("plain"));
        REQUIRE(run_vztrace({"--quiet", "-o", plain, script("fib5.py")}).status() == 0);
        const auto quiet = run_vztrace({"export", plain, "-o", dir.file("plain.folded")});
        CHECK(quiet.status() == 0);
        CHECK(quiet.err.empty());
    }
}

TEST_CASE("export .json and .json.gz keep every call, read back by report") {
    Exported exported(script("programs/generators.py"));
    const auto counts = counts_of(exported.loaded);
    for (const char* name : {"out.json", "out.json.gz"}) {
        INFO(name);
        const Trace back = load_trace(exported.to(name));
        CHECK(counts_of(back) == counts);
        CHECK(back.nesting_problem().empty());
        const auto report = run_vztrace({"report", exported.dir.file(name), "--format=json"});
        REQUIRE(report.status() == 0);
        CHECK(report.out.find("\"calls\": " + std::to_string(exported.loaded.slices.size())) !=
              std::string::npos);
    }
}

TEST_CASE("export and combine keep the asyncio tasks of --log-async on tracks, not threads",
          "[perfetto]") {
    // Before: the tasks' tracks came out as threads and their steps as calls: 7 threads for
    // a one-thread program, "running" a function with 22 calls, and diff against the trace
    // itself found them new (--fail-on-new-calls: status 4).
    TempDir dir;
    const std::string trace = dir.file("tasks.pftrace");
    REQUIRE(run_vztrace({"--quiet", "--log-async", "-o", trace, script("log_async.py")}).status() ==
            0);
    struct Totals {
        std::uint64_t calls, threads, tracks, track_slices;
    };
    const auto totals_of = [](const std::string& path) {
        const auto report = run_vztrace({"report", path, "--format=json"});
        INFO(report.err);
        REQUIRE(report.status() == 0);
        simdjson::dom::parser parser;
        const simdjson::dom::element root = parser.parse(report.out);
        return Totals{std::uint64_t(root["calls"]), std::uint64_t(root["threads"]),
                      std::uint64_t(root["tracks"]), std::uint64_t(root["track_slices"])};
    };
    const Totals recorded = totals_of(trace);
    REQUIRE(recorded.tracks >= 3);
    REQUIRE(recorded.track_slices > recorded.tracks);
    // One recording for every part below (sections would record it again for each).
    for (const char* name : {"out.pftrace", "out.json", "out.json.gz"}) {
        INFO(name);
        const std::string out = dir.file(name);
        REQUIRE(run_vztrace({"export", trace, "-o", out}).status() == 0);
        const Totals exported = totals_of(out);
        CHECK(exported.calls == recorded.calls);
        CHECK(exported.threads == recorded.threads);
        CHECK(exported.tracks == recorded.tracks);
        CHECK(exported.track_slices == recorded.track_slices);
        CHECK(run_vztrace({"diff", trace, out, "--fail-on-new-calls"}).status() == 0);
    }
    {
        INFO("combine");
        const std::string again = dir.file("again.pftrace");
        REQUIRE(
            run_vztrace({"--quiet", "--log-async", "-o", again, script("log_async.py")}).status() ==
            0);
        const Totals second = totals_of(again);  // its own loop's calls: as many, or not
        const std::string out = dir.file("both.pftrace");
        REQUIRE(run_vztrace({"combine", trace, again, "-o", out}).status() == 0);
        const Totals both = totals_of(out);
        CHECK(both.calls == recorded.calls + second.calls);
        CHECK(both.threads == recorded.threads + second.threads);
        CHECK(both.tracks == recorded.tracks + second.tracks);
        CHECK(both.track_slices == recorded.track_slices + second.track_slices);
    }
    {
        INFO("pstats and folded count calls alone");
        // A step is a slice "running" at the top of its track: a stack of its own in folded,
        // a C function's key in pstats. Both are summed as the trace is read, and a JSON
        // trace names its tracks at its end, after their slices.
        const std::string json = dir.file("tasks.json");
        REQUIRE(run_vztrace({"export", trace, "-o", json}).status() == 0);
        for (const std::string& source : {trace, json}) {
            INFO(source);
            REQUIRE(run_vztrace({"export", source, "-o", dir.file("out.folded")}).status() == 0);
            const std::string folded = "\n" + vztrace::testing::read_file(dir.file("out.folded"));
            CHECK(folded.find("\nrunning ") == std::string::npos);
            CHECK(folded.find(";worker (") != std::string::npos);
            REQUIRE(run_vztrace({"export", source, "-o", dir.file("out.pstats")}).status() == 0);
            const std::string pstats = vztrace::testing::read_file(dir.file("out.pstats"));
            CHECK(pstats.find("method running>") == std::string::npos);
            CHECK(pstats.find("worker") != std::string::npos);
        }
    }
}

TEST_CASE("export .speedscope.json opens and closes every call, in time order") {
    Exported exported(script("threads.py"));
    simdjson::dom::parser parser;
    const auto root = parser.load(exported.to("out.speedscope.json"));
    CHECK(std::string_view(root["$schema"]) ==
          "https://www.speedscope.app/file-format-schema.json");
    std::size_t opens = 0, closes = 0, profiles = 0, started_later = 0;
    bool ordered = true;
    std::int64_t first_start = std::numeric_limits<std::int64_t>::max();
    for (simdjson::dom::element profile : root["profiles"].get_array()) {
        ++profiles;
        CHECK(std::string_view(profile["type"]) == "evented");
        // One time axis: each thread starts where it started in the trace (each started
        // at 0 before, the workers over the main thread's start).
        const std::int64_t start = std::int64_t(profile["startValue"]);
        first_start = std::min(first_start, start);
        if (start > 0) ++started_later;
        std::int64_t last = start;
        for (simdjson::dom::element event : profile["events"].get_array()) {
            const std::int64_t at = std::int64_t(event["at"]);
            ordered = ordered && at >= last;
            last = at;
            (std::string_view(event["type"]) == "O" ? opens : closes)++;
        }
    }
    CHECK(ordered);
    CHECK(first_start == 0);
    CHECK(started_later + 1 == profiles);
    CHECK(opens == exported.loaded.slices.size());
    CHECK(closes == opens);
    CHECK(profiles == exported.loaded.threads.size());
}

TEST_CASE("export .folded gives each stack its self time, for flamegraph.pl and inferno") {
    Exported exported(script("fib5.py"));
    const std::string folded = vztrace::testing::read_file(exported.to("out.folded"));
    const std::string module = "<module> (" + script("fib5.py") + ":1)";
    const std::string fib = "fib (" + script("fib5.py") + ":1)";
    // fib(5) recurses 5 deep below the module: that stack is there, frame by frame.
    CHECK(folded.find(module + ";" + fib + ";" + fib + ";" + fib + ";" + fib + ";" + fib + " ") !=
          std::string::npos);
    std::istringstream in(folded);
    for (std::string line; std::getline(in, line);) {
        const auto space = line.rfind(' ');
        REQUIRE(space != std::string::npos);
        CHECK(std::stoll(line.substr(space + 1)) >= 0);  // nanoseconds of self time
    }
}

TEST_CASE("export .folded keeps each stack on one line whatever a name holds") {
    // A '\r' or a NUL in a name went into the file as it was: a stack split in two, or cut.
    Exported exported(script("paren_names.py"));
    const std::string folded = vztrace::testing::read_file(exported.to("names.folded"));
    CHECK(folded.find('\r') == std::string::npos);
    CHECK(folded.find('\0') == std::string::npos);
    CHECK(contains(folded, ";odd  end (" + script("paren_names.py") + ":15) "));
}

TEST_CASE("export refuses a format it does not know and keeps an existing file on failure") {
    TempDir dir;
    dir.write("keep.json", "precious");
    const auto unknown = run_vztrace({"export", dir.file("x.pftrace"), "-o", dir.file("x.txt")});
    CHECK(unknown.status() == 2);
    CHECK(std::count(unknown.err.begin(), unknown.err.end(), '\n') == 1);
    const auto missing =
        run_vztrace({"export", dir.file("missing.pftrace"), "-o", dir.file("keep.json")});
    CHECK(missing.status() == 66);
    CHECK(vztrace::testing::read_file(dir.file("keep.json")) == "precious");
}

TEST_CASE("export .pftrace writes any trace as Perfetto, every call kept") {
    Exported exported(script("threads.py"));
    const std::string json = exported.to("out.json");
    const auto back = run_vztrace({"export", json, "-o", exported.dir.file("back.pftrace")});
    REQUIRE(back.status() == 0);
    const Trace perfetto = load_trace(exported.dir.file("back.pftrace"));
    CHECK(counts_of(perfetto) == counts_of(exported.loaded));
    CHECK(perfetto.nesting_problem().empty());
    CHECK(perfetto.threads == exported.loaded.threads);
    CHECK(perfetto.processes == exported.loaded.processes);
}

TEST_CASE("combine puts traces of separate runs in one, each process with its pid and names",
          "[perfetto]") {
    TempDir dir;
    const std::string first = dir.file("first.pftrace");
    const std::string second = dir.file("second.pftrace");
    REQUIRE(run_vztrace({"--quiet", "-o", first, script("fib5.py")}).status() == 0);
    REQUIRE(run_vztrace({"--quiet", "-o", second, script("threads.py")}).status() == 0);
    const Trace a = load_trace(first);
    const Trace b = load_trace(second);
    const auto start_of = [](const Trace& trace, std::int64_t pid) {
        std::int64_t start = INT64_MAX;
        for (const auto& slice : trace.slices) {
            if (slice.pid == pid) start = std::min(start, slice.ts_ns);
        }
        return start;
    };
    for (const char* align : {"realtime", "start"}) {
        INFO("--align " << align);
        const std::string out = dir.file(std::string(align) + ".pftrace");
        const auto result = run_vztrace({"combine", first, second, "-o", out, "--align", align});
        INFO(result.err);
        REQUIRE(result.status() == 0);
        const Trace both = load_trace(out);
        CHECK(both.slices.size() == a.slices.size() + b.slices.size());
        CHECK(both.processes.size() == 2);
        CHECK(both.processes.at(a.processes.begin()->first) == script("fib5.py"));
        CHECK(both.processes.at(b.processes.begin()->first) == script("threads.py"));
        CHECK(both.nesting_problem().empty());
        const std::int64_t a_start = start_of(both, a.processes.begin()->first);
        const std::int64_t b_start = start_of(both, b.processes.begin()->first);
        if (std::string(align) == "start") {
            CHECK(a_start == b_start);
        } else {
            // The second program ran after the first had ended, by the machine's clock.
            std::int64_t a_end = 0;
            for (const auto& slice : both.slices) {
                if (slice.pid == a.processes.begin()->first)
                    a_end = std::max(a_end, slice.end_ns());
            }
            CHECK(b_start > a_end);
        }
    }
    {
        INFO("a trace exported or combined keeps the machine clock it had, and no other");
        // export -o .pftrace and combine wrote CLOCK_REALTIME equal to CLOCK_MONOTONIC: a
        // later combine by the machine's clock put the runs about 56 years apart.
        const std::string again = dir.file("again.pftrace");
        REQUIRE(run_vztrace({"export", first, "-o", again}).status() == 0);
        const auto gap = [&](const std::string& from, const std::string& out) {
            const auto result = run_vztrace({"combine", from, second, "-o", out});
            INFO(result.err);
            REQUIRE(result.status() == 0);
            const Trace both = load_trace(out);
            return start_of(both, b.processes.begin()->first) -
                   start_of(both, a.processes.begin()->first);
        };
        const std::int64_t direct = gap(first, dir.file("direct.pftrace"));
        CHECK(direct > 0);
        CHECK(std::llabs(gap(again, dir.file("exported.pftrace")) - direct) <= 1000);
        // What knew no machine clock (JSON, or traces lined up by their starts) says none.
        REQUIRE(run_vztrace({"export", first, "-o", dir.file("plain.json")}).status() == 0);
        REQUIRE(run_vztrace({"export", dir.file("plain.json"), "-o", dir.file("plain.pftrace")})
                    .status() == 0);
        REQUIRE(run_vztrace({"combine", first, second, "--align", "start", "-o",
                             dir.file("starts.pftrace")})
                    .status() == 0);
        for (const char* unknown : {"plain.pftrace", "starts.pftrace"}) {
            INFO(unknown);
            const auto refused =
                run_vztrace({"combine", dir.file(unknown), second, "-o", dir.file("x.pftrace")});
            CHECK(refused.status() == 2);
            CHECK(refused.err.find("--align start") != std::string::npos);
        }
    }
    {
        INFO("a JSON trace vztrace recorded is lined up by the machine clock it keeps");
        // Before: read without it, such a trace was refused (no CLOCK_REALTIME).
        const std::string later = dir.file("later.json");
        REQUIRE(run_vztrace({"--quiet", "-o", later, script("fib5.py")}).status() == 0);
        const std::string out = dir.file("by_clock.pftrace");
        const auto result = run_vztrace({"combine", second, later, "-o", out});
        INFO(result.err);
        REQUIRE(result.status() == 0);
        const Trace both = load_trace(out);
        const Trace json = load_trace(later);
        std::int64_t second_end = 0;
        for (const auto& slice : both.slices) {
            if (slice.pid == b.processes.begin()->first)
                second_end = std::max(second_end, slice.end_ns());
        }
        // It ran after the second program had ended, by the machine's clock.
        CHECK(start_of(both, json.processes.begin()->first) > second_end);
        CHECK(both.slices.size() == b.slices.size() + json.slices.size());
    }
    {
        INFO("VizTracer's JSON is lined up by the machine clock it keeps");
        // Its baseTimeNanoseconds (1.0 on) is CLOCK_REALTIME minus its times' clock,
        // CLOCK_MONOTONIC, as vztrace's realtime_offset_ns; such files were refused (hunt AT).
        const auto viztracer = [&](const std::string& name, int pid, long long base) {
            dir.write(name, "{\"traceEvents\": [{\"ph\": \"X\", \"name\": \"f\", \"pid\": " +
                                std::to_string(pid) +
                                ", \"tid\": 1, \"ts\": 1000.0, \"dur\": 2.0}], "
                                "\"viztracer_metadata\": {\"version\": \"1.1.1\", "
                                "\"baseTimeNanoseconds\": " +
                                std::to_string(base) + "}}");
            return dir.file(name);
        };
        const std::string early = viztracer("early.json", 7, 1767325615896926966LL);
        const std::string late = viztracer("late.json", 9, 1767325615896926966LL + 5000000000LL);
        const auto result = run_vztrace({"combine", early, late, "-o", dir.file("viz.pftrace")});
        INFO(result.err);
        REQUIRE(result.status() == 0);
        const Trace both = load_trace(dir.file("viz.pftrace"));
        CHECK(start_of(both, 9) - start_of(both, 7) == 5000000000LL);
    }
    {
        INFO("a JSON trace has no machine clock to align by; the output must be Perfetto");
        const auto json = run_vztrace({"export", first, "-o", dir.file("first.json")});
        REQUIRE(json.status() == 0);
        const auto refused =
            run_vztrace({"combine", dir.file("first.json"), second, "-o", dir.file("c.pftrace")});
        CHECK(refused.status() == 2);
        CHECK(refused.err.find("--align start") != std::string::npos);
        CHECK(std::count(refused.err.begin(), refused.err.end(), '\n') == 1);
        CHECK(run_vztrace({"combine", first, second, "-o", dir.file("c.json")}).status() == 2);
        CHECK(run_vztrace({"combine", dir.file("first.json"), second, "--align", "start", "-o",
                           dir.file("c.pftrace")})
                  .status() == 0);
    }
}

TEST_CASE("report --format json gives the traces a combined one was made of as a list",
          "[perfetto]") {
    // combine keeps one combined_from a trace, and report wrote each as a member of the
    // same name: JSON readers (Python's json, jq) kept the last alone (found by hunt AK).
    TempDir dir;
    std::vector<std::string> inputs;
    for (const char* name : {"a.pftrace", "b.pftrace", "c.pftrace"}) {
        inputs.push_back(dir.file(name));
        REQUIRE(run_vztrace({"--quiet", "-o", inputs.back(), script("fib5.py")}).status() == 0);
    }
    const std::string out = dir.file("all.pftrace");
    REQUIRE(run_vztrace({"combine", inputs[0], inputs[1], inputs[2], "-o", out}).status() == 0);
    const auto report = run_vztrace({"report", out, "--format", "json"});
    REQUIRE(report.status() == 0);
    INFO(report.out);
    CHECK(report.out.find("\"combined_from\"") == report.out.rfind("\"combined_from\""));
    simdjson::dom::parser parser;
    simdjson::dom::array from;
    REQUIRE(parser.parse(report.out)["recording"]["combined_from"].get(from) == simdjson::SUCCESS);
    std::vector<std::string> names;
    for (const simdjson::dom::element name : from) names.emplace_back(name.get_string().value());
    CHECK(names == inputs);
    std::string_view align;
    CHECK(parser.parse(report.out)["recording"]["combined_align"].get(align) == simdjson::SUCCESS);
    CHECK(align == "realtime");
}

TEST_CASE("export and combine keep the flag of the calls a trace has unfinished") {
    // The flag (a call still running when SIGTERM ended the program, closed at that moment)
    // was dropped: such calls came out as if they had ended there.
    TempDir dir;
    const auto unfinished = [](const Trace& trace) {
        std::vector<std::string> names;
        for (const auto& slice : trace.slices) {
            if (slice.unfinished) names.push_back(slice.name);
        }
        std::sort(names.begin(), names.end());
        return names;
    };
    for (const char* recorded : {"run.pftrace", "run.json"}) {
        const std::string source = dir.file(recorded);
        REQUIRE(run_vztrace({"--quiet", "-o", source, script("tree/sigterm_self.py")}).status() ==
                -15);
        const auto expected = unfinished(load_trace(source));
        REQUIRE(expected.size() >= 3);  // <module>, outer, doomed (and posix.kill)
        for (const char* exported : {"e.json", "e.pftrace"}) {
            INFO(recorded << " exported to " << exported);
            const std::string out = dir.file(exported);
            const auto result = run_vztrace({"export", source, "-o", out});
            INFO(result.err);
            REQUIRE(result.status() == 0);
            CHECK(unfinished(load_trace(out)) == expected);
            // Only the flag: no call is said to have arguments left out.
            CHECK(result.err.find("argument") == std::string::npos);
        }
        {
            INFO(recorded << " combined");
            const std::string other = dir.file("fib5.pftrace");
            REQUIRE(run_vztrace({"--quiet", "-o", other, script("fib5.py")}).status() == 0);
            const std::string out = dir.file("c.pftrace");
            const auto result = run_vztrace({"combine", source, other, "-o", out});
            INFO(result.err);
            REQUIRE(result.status() == 0);
            CHECK(unfinished(load_trace(out)) == expected);
        }
    }
}

TEST_CASE("every JSON vztrace writes is UTF-8, whatever the bytes of the program's name") {
    // The process name comes from argv, which may hold any bytes: written raw, it made the
    // recorded JSON, export's and report's invalid, and report itself refused them.
    TempDir dir;
    const std::string program = dir.file("caf\xe9.py");
    dir.write("caf\xe9.py", "def f():\n    pass\n\nf()\n");
    REQUIRE(run_vztrace({"--quiet", "-o", dir.file("t.json"), program}).status() == 0);
    REQUIRE(run_vztrace({"--quiet", "-o", dir.file("t.pftrace"), program}).status() == 0);
    REQUIRE(run_vztrace({"export", dir.file("t.pftrace"), "-o", dir.file("e.json")}).status() == 0);
    REQUIRE(run_vztrace({"export", dir.file("t.pftrace"), "-o", dir.file("e.speedscope.json")})
                .status() == 0);
    simdjson::dom::parser parser;
    for (const char* name : {"t.json", "e.json", "e.speedscope.json"}) {
        INFO(name);
        const std::string text = vztrace::testing::read_file(dir.file(name));
        simdjson::dom::element root;
        CHECK(parser.parse(text).get(root) == simdjson::SUCCESS);     // UTF-8 is checked
        CHECK(text.find("caf\xef\xbf\xbd.py") != std::string::npos);  // U+FFFD for the byte
    }
    for (const char* name : {"t.json", "e.json"}) {
        const auto report =
            run_vztrace({"report", dir.file(name), "--format", "json", "--by", "process"});
        CHECK(report.status() == 0);
        simdjson::dom::element root;
        CHECK(parser.parse(report.out).get(root) == simdjson::SUCCESS);
    }
}

TEST_CASE("export .pstats keys a function by file, line and code name, whatever the path") {
    // The name was split at its last " (": a file under "proj (copy)/" gave the key
    // ('copy)/s.py', 1, 'f (/.../proj'). The key's name is the code's, as cProfile's.
    TempDir dir;
    std::filesystem::create_directory(dir.file("proj (copy)"));
    const std::string program = dir.file("proj (copy)/s.py");
    dir.write("proj (copy)/s.py", "class A:\n    def m(self):\n        return 1\n\n\nA().m()\n");
    REQUIRE(run_vztrace({"--quiet", "-o", dir.file("t.pftrace"), program}).status() == 0);
    REQUIRE(run_vztrace({"export", dir.file("t.pftrace"), "-o", dir.file("t.pstats")}).status() ==
            0);
    const auto keys =
        vztrace::testing::run_process({kPython, "-c",
                                       "import pstats, sys\n"
                                       "for f, l, n in pstats.Stats(sys.argv[1]).stats:\n"
                                       "    if f == sys.argv[2]: print(l, n)\n",
                                       dir.file("t.pstats"), program});
    INFO(keys.err);
    REQUIRE(keys.status() == 0);
    CHECK(keys.out.find("2 m\n") != std::string::npos);
    CHECK(keys.out.find("1 A\n") != std::string::npos);
    CHECK(keys.out.find("1 <module>\n") != std::string::npos);
}

TEST_CASE("export keeps times before 0 and refuses times no trace can hold") {
    // -0.5 us was written "0.500" (the sign lost with the digits), and Perfetto's output
    // clamped every time before 0 to 0, each call's length with it.
    TempDir dir;
    dir.write("neg.json", R"({"traceEvents": [
        {"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": -0.5, "dur": 0.25},
        {"ph": "X", "name": "b", "pid": 1, "tid": 1, "ts": -2.5, "dur": 1}]})");
    REQUIRE(run_vztrace({"export", dir.file("neg.json"), "-o", dir.file("o.json")}).status() == 0);
    const std::string json = vztrace::testing::read_file(dir.file("o.json"));
    CHECK(json.find("\"ts\": -0.500, \"dur\": 0.250") != std::string::npos);
    CHECK(json.find("\"ts\": -2.500, \"dur\": 1.000") != std::string::npos);
    REQUIRE(run_vztrace({"export", dir.file("neg.json"), "-o", dir.file("o.pftrace")}).status() ==
            0);
    const Trace perfetto = load_trace(dir.file("o.pftrace"));
    REQUIRE(perfetto.slices.size() == 2);
    for (const auto& slice : perfetto.slices) {
        CHECK(slice.dur_ns == (slice.name == "a" ? 250 : 1000));
    }
    dir.write("huge.json", R"({"traceEvents": [
        {"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 1e20, "dur": 1}]})");
    const auto huge = run_vztrace({"report", dir.file("huge.json")});
    CHECK(huge.status() == 65);
    CHECK(huge.err.find("out of range") != std::string::npos);
}

TEST_CASE("export and combine refuse to write over their input, and what pstats cannot load") {
    TempDir dir;
    const std::string trace = dir.file("t.pftrace");
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("fib5.py")}).status() == 0);
    const std::string before = vztrace::testing::read_file(trace);
    std::filesystem::create_symlink(trace, dir.file("same.pftrace"));
    // It replaced the trace with a copy of its calls alone, its metadata gone.
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"export", trace, "-o", trace},
          {"export", trace, "-o", dir.file("same.pftrace")},
          {"combine", trace, trace, "-o", dir.file("same.pftrace")}}) {
        const auto result = run_vztrace(args);
        CHECK(result.status() == 2);
        CHECK(result.err.find("itself: name another file") != std::string::npos);
        CHECK(vztrace::testing::read_file(trace) == before);
    }
    // An empty profile: pstats.Stats raised "Cannot create or construct" on the file.
    dir.write("empty.json", R"({"traceEvents": []})");
    const auto empty = run_vztrace({"export", dir.file("empty.json"), "-o", dir.file("e.pstats")});
    CHECK(empty.status() == 65);
    CHECK(std::count(empty.err.begin(), empty.err.end(), '\n') == 1);
    CHECK_FALSE(vztrace::testing::file_exists(dir.file("e.pstats")));
}

TEST_CASE("combine refuses traces too far apart for one trace, and export says one line") {
    // Found by hunt AA. Two traces, each readable, 146 years apart by their real times: the
    // combined trace was written (status 0) and refused by report as damaged.
    TempDir dir;
    const std::string metadata =
        R"("vztrace_metadata": {"recorder": "vztrace", "realtime_offset_ns": "0"})";
    dir.write("early.json", R"({"traceEvents": [{"ph": "X", "pid": 1, "tid": 1, )"
                            R"("ts": -2.2e15, "dur": 5, "name": "f"}], )" +
                                metadata + "}");
    dir.write("late.json", R"({"traceEvents": [{"ph": "X", "pid": 2, "tid": 2, )"
                           R"("ts": 2.2e15, "dur": 5, "name": "g"}], )" +
                               metadata + "}");
    const std::string combined = dir.file("both.pftrace");
    const auto apart =
        run_vztrace({"combine", dir.file("early.json"), dir.file("late.json"), "-o", combined});
    CHECK(apart.status() == 2);
    CHECK(std::count(apart.err.begin(), apart.err.end(), '\n') == 1);
    CHECK(apart.err.find("more than 73 years apart") != std::string::npos);
    CHECK_FALSE(vztrace::testing::file_exists(combined));
    // Lined up by their starts they fit, and the result reads back.
    REQUIRE(run_vztrace({"combine", "--align", "start", dir.file("early.json"),
                         dir.file("late.json"), "-o", combined})
                .status() == 0);
    const auto report = run_vztrace({"report", combined});
    CHECK(report.status() == 0);
    CHECK(report.out.find("2 calls in 2 threads of 2 processes") != std::string::npos);

    // A trace cut inside its first packets, no call in it, exported to .pstats: the error
    // alone (the warning that it stops inside a packet came first: two lines).
    const std::string trace = dir.file("t.pftrace");
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("fib5.py")}).status() == 0);
    dir.write("cut.pftrace", vztrace::testing::read_file(trace).substr(0, 100));
    const auto cut = run_vztrace({"export", dir.file("cut.pftrace"), "-o", dir.file("c.pstats")});
    CHECK(cut.status() == 65);
    CHECK(std::count(cut.err.begin(), cut.err.end(), '\n') == 1);
    CHECK(cut.err.find("holds no calls") != std::string::npos);
}

TEST_CASE("an output named with 255 bytes is written") {
    // A name of 238 bytes or more was refused: the temporary name beside it passed the 255
    // bytes a name may have.
    TempDir dir;
    const std::string longest = std::string(255 - 5, 'n') + ".json";
    const auto recorded = run_vztrace({"--quiet", "-o", dir.file(longest), script("fib5.py")});
    INFO(recorded.err);
    CHECK(recorded.status() == 0);
    CHECK(load_trace(dir.file(longest)).slices.size() > 15);
    const std::string exported = std::string(255 - 8, 'e') + ".pftrace";
    const auto result = run_vztrace({"export", dir.file(longest), "-o", dir.file(exported)});
    INFO(result.err);
    CHECK(result.status() == 0);
    CHECK(load_trace(dir.file(exported)).slices.size() > 15);
}

TEST_CASE("export past a file-size limit fails in one line and leaves nothing behind") {
    // SIGXFSZ killed it (status 153) and left its temporary file beside the output.
    TempDir dir;
    const std::string trace = dir.file("t.pftrace");
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("fib5.py")}).status() == 0);
    dir.write("keep.json", "precious");
    const auto result = vztrace::testing::run_process(
        {"/bin/sh", "-c", "ulimit -f 8 && exec \"$0\" export \"$1\" -o \"$2\"", kVztrace, trace,
         dir.file("keep.json")});
    CHECK(result.status() == 74);
    CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
    CHECK(vztrace::testing::read_file(dir.file("keep.json")) == "precious");
    CHECK(std::distance(std::filesystem::directory_iterator(dir.path()),
                        std::filesystem::directory_iterator()) == 2);
}

namespace {

// A Perfetto trace protoc encodes from `text` (Perfetto's text format, with the field names
// of tests/perfetto/vztrace_trace.proto).
std::string encoded_trace(const std::string& text, const TempDir& dir, const std::string& name) {
    const std::string source = dir.file(name + ".txtpb");
    std::ofstream(source) << text;
    const std::string trace = dir.file(name);
    const auto result = vztrace::testing::run_process(
        {"/bin/sh", "-c",
         "exec \"$0\" --proto_path=\"$1\" --encode=perfetto.protos.Trace vztrace_trace.proto "
         "<\"$2\" >\"$3\"",
         VZTRACE_PROTOC, VZTRACE_TEST_PROTOS, source, trace});
    INFO(result.err);
    REQUIRE(result.status() == 0);
    return trace;
}

}  // namespace

TEST_CASE("two tasks' tracks whose uuids share their low bits stay two in reports and JSON") {
    // Before: a task's track was a JSON thread whose id took 30 bits of its uuid, so two
    // tasks could be one (2 to 7 of 100,000 asyncio tasks in a run): in report --by thread
    // and in JSON, recorded or exported, one track held both tasks' steps.
    TempDir dir;
    const std::string trace = encoded_trace(
        R"pb(packet {
               trusted_packet_sequence_id: 1
               track_descriptor {
                 uuid: 100
                 process { pid: 42 process_name: "app" }
               }
             }
             packet {
               trusted_packet_sequence_id: 1
               track_descriptor {
                 uuid: 200
                 parent_uuid: 100
                 thread { pid: 42 tid: 42 thread_name: "MainThread" }
               }
             }
             packet {
               trusted_packet_sequence_id: 1
               track_descriptor { uuid: 4294967301 parent_uuid: 100 name: "Task-1 (a)" }
             }
             packet {
               trusted_packet_sequence_id: 1
               track_descriptor { uuid: 8589934597 parent_uuid: 100 name: "Task-2 (b)" }
             }
             packet {
               trusted_packet_sequence_id: 1
               timestamp: 1000
               track_event { type: TYPE_SLICE_BEGIN track_uuid: 200 name: "main" }
             }
             packet {
               trusted_packet_sequence_id: 1
               timestamp: 1100
               track_event { type: TYPE_SLICE_BEGIN track_uuid: 4294967301 name: "running" }
             }
             packet {
               trusted_packet_sequence_id: 1
               timestamp: 1200
               track_event { type: TYPE_SLICE_END track_uuid: 4294967301 }
             }
             packet {
               trusted_packet_sequence_id: 1
               timestamp: 1300
               track_event { type: TYPE_SLICE_BEGIN track_uuid: 8589934597 name: "running" }
             }
             packet {
               trusted_packet_sequence_id: 1
               timestamp: 1700
               track_event { type: TYPE_SLICE_END track_uuid: 8589934597 }
             }
             packet {
               trusted_packet_sequence_id: 1
               timestamp: 2000
               track_event { type: TYPE_SLICE_END track_uuid: 200 }
             }
        )pb",
        dir, "collide.pftrace");
    const std::string json = dir.file("collide.json");
    for (const std::string& input : {trace, json}) {
        if (input == json) {
            const auto exported = run_vztrace({"export", trace, "-o", json});
            INFO(exported.err);
            REQUIRE(exported.status() == 0);
            const Trace loaded = load_trace(json);
            std::map<std::string, std::size_t> steps;
            for (const auto& slice : loaded.slices) steps[slice.track]++;
            CHECK(steps == std::map<std::string, std::size_t>{
                               {"", 1}, {"Task-1 (a)", 1}, {"Task-2 (b)", 1}});
        }
        INFO(input);
        const auto report =
            run_vztrace({"report", input, "--by", "thread", "--format", "json", "--limit", "0"});
        INFO(report.err);
        REQUIRE(report.status() == 0);
        CHECK(report.out.find("\"Task-1 (a)\"") != std::string::npos);
        CHECK(report.out.find("\"Task-2 (b)\"") != std::string::npos);
        simdjson::dom::parser parser;
        simdjson::dom::element parsed = parser.parse(report.out);
        std::size_t tracks = 0;
        for (simdjson::dom::element group : parsed["groups"].get_array()) {
            if (bool(group["track"])) ++tracks;
        }
        CHECK(tracks == 2);
    }
}

TEST_CASE("a thread whose id lies where vztrace's JSON puts task tracks stays a thread") {
    // Before: exported to JSON (which says vztrace wrote it), a VizTracer trace's thread
    // with an id from 2^30 to 2^31 was read back as an asyncio task's track, its calls gone.
    TempDir dir;
    const std::string input = dir.file("viz.json");
    std::ofstream(input) << R"js({"traceEvents": [
{"ph": "X", "name": "f (a.py:1)", "pid": 7, "tid": 7, "ts": 1, "dur": 2},
{"ph": "X", "name": "g (a.py:5)", "pid": 7, "tid": 1234567890, "ts": 2, "dur": 3},
{"ph": "M", "name": "thread_name", "pid": 7, "tid": 1234567890, "args": {"name": "worker"}}
], "viztracer_metadata": {"version": "1.1.1"}})js";
    const std::string output = dir.file("again.json");
    const auto exported = run_vztrace({"export", input, "-o", output});
    INFO(exported.err);
    REQUIRE(exported.status() == 0);
    for (const std::string& trace : {input, output}) {
        const auto report = run_vztrace({"report", trace, "--limit", "0"});
        INFO(report.err);
        CHECK(report.out.find("2 calls in 2 threads of 1 process") != std::string::npos);
    }
}
