// The in-script `vztrace` module (embed/script_module.cpp): instants, counters and spans
// where the program puts them, pause/resume, @ignore and @sparse, from threads, signal
// handlers and children; and the stand-in (embed/python) that runs the same program under
// plain python.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <csignal>
#include <string>
#include <vector>

#include "e2e/e2e.hpp"

using namespace vztrace::e2e;
using vztrace::testing::load_trace;
using vztrace::testing::RunOptions;
using vztrace::testing::TempDir;
using vztrace::testing::Trace;
using vztrace::testing::TraceArgs;
using vztrace::testing::TraceEvent;

namespace {

const std::string kStandIn = kScripts + "/../../embed/python";

struct TracedRun {
    vztrace::testing::ProcessResult result;
    Trace trace;
};

// `vztrace --quiet -o TRACE [options] tests/scripts/api/SCRIPT [args]`, in the format the
// suite runs on.
TracedRun run_api_script(const std::string& name, const std::vector<std::string>& options = {},
                         const std::vector<std::string>& args = {}) {
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("trace"));
    std::vector<std::string> all = {"--quiet", "-o", trace};
    all.insert(all.end(), options.begin(), options.end());
    all.push_back(script("api/" + name));
    all.insert(all.end(), args.begin(), args.end());
    TracedRun run{run_vztrace(all), {}};
    INFO(run.result.err);
    REQUIRE(run.result.status() == 0);
    REQUIRE(run.result.err.empty());
    run.trace = load_trace(trace);
    return run;
}

// `tests/scripts/api/SCRIPT` under plain python with the stand-in on PYTHONPATH.
vztrace::testing::ProcessResult run_with_stand_in(const std::string& name,
                                                  const std::vector<std::string>& args = {}) {
    RunOptions options;
    options.env["PYTHONPATH"] = kStandIn;
    std::vector<std::string> argv = {kPython, script("api/" + name)};
    argv.insert(argv.end(), args.begin(), args.end());
    return vztrace::testing::run_process(argv, options);
}

std::string py_name(const std::string& qualname, const std::string& file, int line) {
    return named(qualname, script("api/" + file), line);
}

// The slices named exactly `name` (Trace::named takes a prefix), in the order of the trace.
std::vector<TraceEvent> all_named(const Trace& trace, const std::string& name) {
    std::vector<TraceEvent> found;
    for (const auto& e : trace.slices) {
        if (e.name == name) found.push_back(e);
    }
    return found;
}

// The one slice named `name`.
TraceEvent only(const Trace& trace, const std::string& name) {
    const auto found = all_named(trace, name);
    INFO(name);
    REQUIRE(found.size() == 1);
    return found.front();
}

std::string parent_of(const Trace& trace, const TraceEvent& slice) {
    const auto names = trace.ancestors(slice);
    return names.empty() ? std::string() : names.front();
}

// The parents of every slice named `name`, in the order of the trace.
std::vector<std::string> parents_of_all(const Trace& trace, const std::string& name) {
    std::vector<std::string> parents;
    for (const auto& e : all_named(trace, name)) parents.push_back(parent_of(trace, e));
    return parents;
}

std::vector<double> values_of(const Trace& trace, const std::string& counter) {
    std::vector<double> values;
    for (const auto& sample : trace.counters_named(counter)) values.push_back(sample.value);
    return values;
}

}  // namespace

TEST_CASE("vztrace.instant records its name and its arguments on the thread's track", "[api]") {
    const auto run = run_api_script("marks.py");
    const Trace& trace = run.trace;

    const auto start = trace.instants_named("start");
    REQUIRE(start.size() == 1);
    CHECK(start[0].args == TraceArgs{{"count", "5"},
                                     {"text", "hello"},
                                     {"items", "[1, 2]"},
                                     {"bad", "<repr failed: Unprintable>"}});
    CHECK(start[0].tid == start[0].pid);  // the main thread's track
    // The repr vztrace takes is its own work, not a call of the program's (it was recorded,
    // where --log-func-args left the same repr out).
    CHECK(trace.count_prefix("Unprintable.__repr__") == 0);

    // Cut at 512 bytes, at a character boundary, ending with "...".
    const auto long_args = trace.instants_named("long");
    REQUIRE(long_args.size() == 1);
    std::string accents;
    for (int i = 0; i < 254; ++i) accents += "\xc3\xa9";  // é: 2 bytes, 254 fit in 509
    std::string items = "[";
    for (int i = 0; i < 400; ++i) items += (i > 0 ? ", " : "") + std::to_string(i);
    items += "]";
    CHECK(long_args[0].args ==
          TraceArgs{{"text", accents + "..."}, {"items", items.substr(0, 509) + "..."}});

    const auto plain = trace.instants_named("plain");
    REQUIRE(plain.size() == 1);
    CHECK(plain[0].args.empty());
}

TEST_CASE("vztrace.counter records a counter track per name and key", "[api]") {
    const auto run = run_api_script("marks.py");
    const Trace& trace = run.trace;
    CHECK(values_of(trace, "queue") == std::vector<double>{3, 1});  // key "value": the name
    CHECK(values_of(trace, "memory.rss") == std::vector<double>{10.5});
    CHECK(values_of(trace, "memory.heap") == std::vector<double>{2});
    // NaN is a double in Perfetto; JSON has none, and writes null (which the reader skips).
    const bool json = vztrace::testing::testing_json();
    CHECK(trace.counters_named("not a number").size() == (json ? 0 : 1));
    // An int past a double's range is infinite (null in JSON); it raised OverflowError into
    // the program, which the stand-in module (nothing traced) never does.
    if (!json) {
        CHECK(values_of(trace, "huge") == std::vector<double>{HUGE_VAL});
        CHECK(values_of(trace, "huge.negative") == std::vector<double>{-HUGE_VAL});
    }
    CHECK(trace.counters.size() == (json ? 4 : 7));
    const auto start = trace.instants_named("start");
    REQUIRE(start.size() == 1);
    for (const auto& sample : trace.counters) CHECK(sample.pid == start[0].pid);
}

TEST_CASE("vztrace.span nests with the calls around it, as a with block and as a decorator",
          "[api]") {
    const auto run = run_api_script("marks.py");
    const Trace& trace = run.trace;
    CHECK(trace.nesting_problem().empty());
    const std::string main = py_name("main", "marks.py", 43);
    const std::string inner = py_name("inner", "marks.py", 11);

    // with vztrace.span("block", step=3, label="x"): inner()  inside outer()
    const TraceEvent block = only(trace, "block");
    CHECK(block.args == TraceArgs{{"step", "3"}, {"label", "x"}});
    CHECK(trace.ancestors(block) == std::vector<std::string>{py_name("outer", "marks.py", 15), main,
                                                             py_name("<module>", "marks.py", 1)});
    std::size_t inner_in_block = 0;
    for (const auto& parent : parents_of_all(trace, inner)) inner_in_block += parent == "block";
    CHECK(inner_in_block == 1);

    // @vztrace.span("named", kind="decorator"), called twice from main.
    CHECK(parents_of_all(trace, "named") == std::vector<std::string>{main, main});
    CHECK(parents_of_all(trace, py_name("decorated", "marks.py", 21)) ==
          std::vector<std::string>{"named", "named"});
    for (const auto& span : all_named(trace, "named")) {
        CHECK(span.args == TraceArgs{{"kind", "decorator"}});
    }

    // @vztrace.span with no name: the function's qualname; on a method.
    CHECK(parent_of(trace, only(trace, "bare")) == main);
    CHECK(parent_of(trace, only(trace, py_name("bare", "marks.py", 26))) == "bare");
    CHECK(parent_of(trace, only(trace, "Shape.area span")) == main);
    CHECK(parent_of(trace, only(trace, py_name("Shape.area", "marks.py", 33))) ==
          "Shape.area span");

    // A span left by an exception ends there.
    const TraceEvent failing = only(trace, "failing");
    CHECK_FALSE(failing.unfinished);
    CHECK(parent_of(trace, failing) == py_name("failing", "marks.py", 38));

    // The API's own calls are the program's marks, not calls of its.
    CHECK(trace.count_prefix("vztrace") == 0);
}

TEST_CASE("a span a generator's yield ended leaves a span of the same name around it open",
          "[api]") {
    // The late end of the generator's span (at its last resume) was matched with the
    // enclosing span of the same name, which ended there with the generator's resumed call
    // (flagged unfinished): the calls after it in the block were outside it (hunt AM). The
    // same through the filters (--min-duration).
    for (const std::vector<std::string>& options :
         {std::vector<std::string>{}, std::vector<std::string>{"--min-duration", "1ns"}}) {
        DYNAMIC_SECTION("options: " << options.size()) {
            const auto run = run_api_script("span_generator.py", options);
            const Trace& trace = run.trace;
            CHECK(trace.nesting_problem().empty());
            const std::string main = py_name("main", "span_generator.py", 16);
            const std::string rows = py_name("rows", "span_generator.py", 6);
            CHECK(parents_of_all(trace, py_name("work", "span_generator.py", 12)) ==
                  std::vector<std::string>{"fetch", "fetch", "fetch", "fetch", main});
            const auto resumes = all_named(trace, rows);
            CHECK(resumes.size() == 3);
            for (const auto& resume : resumes) CHECK_FALSE(resume.unfinished);
            std::vector<std::string> fetch_parents;
            for (const auto& fetch : all_named(trace, "fetch")) {
                fetch_parents.push_back(parent_of(trace, fetch));
                // The outer one ends at its block's end.
                if (fetch_parents.back() == main) CHECK_FALSE(fetch.unfinished);
            }
            std::sort(fetch_parents.begin(), fetch_parents.end());
            CHECK(fetch_parents == std::vector<std::string>{main, rows});
        }
    }
}

TEST_CASE("a program using the API prints the same under vztrace and under python", "[api]") {
    TempDir dir;
    RunOptions options;
    options.env["PYTHONPATH"] = kStandIn;
    const auto pair = run_both({script("api/marks.py")}, options,
                               dir.file(vztrace::testing::trace_name("trace")));
    INFO(describe(pair));
    CHECK(pair.python.status() == 0);
    CHECK(pair.vztrace.status() == 0);
    CHECK(pair.python.err.empty());
    CHECK(pair.vztrace.err.empty());
    CHECK(pair.python.out == pair.vztrace.out);
    CHECK(pair.python.out ==
          "outer True\n"
          "decorated 2 3\n"
          "bare 1 bare Bare's doc. bare\n"
          "area 16\n"
          "failing raised KeyError('k')\n"
          "TypeError: vztrace.counter() value 'value' must be an int or a float, not str\n"
          "TypeError: vztrace.counter() needs at least one value, as key=number\n"
          "TypeError: vztrace.instant() name must be a str, not int\n"
          "TypeError: vztrace.ignore decorates a Python function, a method, a property or a "
          "class, not "
          "builtin_function_or_method\n"
          "TypeError: vztrace.span() name must be a str, not int\n"
          // Worded as python words them for the stand-in's functions ("1 were given" before).
          "TypeError: pause() takes 0 positional arguments but 1 was given\n"
          "TypeError: ignore() missing 1 required positional argument: 'function'\n"
          "TypeError: sparse() takes 1 positional argument but 2 were given\n"
          "TypeError: ignore() got some positional-only arguments passed as keyword arguments: "
          "'function'\n");
}

TEST_CASE("every API program runs under python with the stand-in, where nothing is active",
          "[api]") {
    const auto pause = run_with_stand_in("pause.py");
    INFO(pause.err);
    CHECK(pause.status() == 0);
    CHECK(pause.out ==
          "active False\npaused active False\nin paused() False\nafter paused() False\n");
    for (const char* name : {"ignore.py", "sparse.py", "threads_signals.py"}) {
        const auto result = run_with_stand_in(name);
        INFO(name << "\n" << result.err);
        CHECK(result.status() == 0);
        CHECK(result.err.empty());
    }
    const auto children = run_with_stand_in("children.py", {"--spawn"});
    INFO(children.err);
    CHECK(children.status() == 0);
    CHECK(children.out == "fork child active False\nspawn exit 0\nparent active False\n");
}

TEST_CASE("pause and resume leave out exactly the calls begun while paused", "[api]") {
    const auto run = run_api_script("pause.py");
    const Trace& trace = run.trace;
    CHECK(run.result.out ==
          "active True\npaused active False\nin paused() False\nafter paused() True\n");
    CHECK(trace.nesting_problem().empty());

    // f: 1 call before pause(), 12 while paused, 3 after resume(), 6 inside paused(), 2 after.
    const std::string f = py_name("f", "pause.py", 6);
    const std::string main = py_name("main", "pause.py", 17);
    const std::string spanning = py_name("spanning", "pause.py", 10);
    CHECK(trace.count(f) == 6);
    CHECK(parents_of_all(trace, f) ==
          std::vector<std::string>{spanning, main, main, main, main, main});
    // Printed before pause() and after paused(): the two others were begun while paused.
    CHECK(trace.count("builtins.print") == 2);

    // Calls open when the recording paused keep their real end.
    const TraceEvent open_at_pause = only(trace, spanning);
    CHECK_FALSE(open_at_pause.unfinished);
    CHECK_FALSE(only(trace, main).unfinished);
    const auto shown = trace.instants_named("shown");
    REQUIRE(shown.size() == 1);
    CHECK(open_at_pause.end_ns() <= shown[0].ts_ns);

    CHECK(trace.instants_named("hidden").empty());
    CHECK(trace.count("hidden span") == 0);
}

TEST_CASE("a paused() entered again keeps the recording paused, and paused takes no repr",
          "[api]") {
    // One flag for every entry of the object: the inner exit resumed the recording inside
    // the outer block, whose work() was recorded. And instant(), span() and paused()'s
    // instants took the program's reprs while paused, for events then left out (hunt AM).
    const auto run = run_api_script("paused_reused.py");
    CHECK(run.result.out ==
          "0 active inside: False\n1 active inside: False\nactive after: True\n"
          "reprs taken while paused: 0\nreprs taken after: 1\n");
    CHECK(run.trace.count_prefix(py_name("work", "paused_reused.py", 8)) == 0);
    // The outer nested() began before the recording paused; the inner one inside.
    CHECK(run.trace.count_prefix(py_name("nested", "paused_reused.py", 12)) == 1);
    CHECK(run.trace.instants_named("recorded").size() == 1);
    CHECK(run.trace.instants_named("while paused").empty());
    CHECK(run.trace.count("made while paused") == 0);
}

TEST_CASE("active() is False once --max-size has stopped the recording", "[api]") {
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("trace"));
    const auto result =
        run_vztrace({"--max-size", "1M", "-o", trace, script("api/max_size_active.py")});
    INFO(result.err);
    CHECK(result.status() == 0);
    CHECK(result.out == "before True\nafter False\n");
    CHECK(contains(result.err, "not recorded"));
}

TEST_CASE("the collections of --log-gc stay under --log-sparse", "[api]") {
    // The writer left every gc slice out, as a call not marked sparse (hunt AM).
    const auto run = run_api_script("sparse_gc.py", {"--log-gc", "--log-sparse"});
    const std::string handle = py_name("handle", "sparse_gc.py", 7);
    CHECK(run.trace.count(handle) == 1);
    const auto parents = parents_of_all(run.trace, "gc");
    CHECK(parents.size() >= 2);
    CHECK(std::count(parents.begin(), parents.end(), handle) >= 1);
    CHECK(std::count(parents.begin(), parents.end(), "") >= 1);
    CHECK(run.trace.nesting_problem().empty());
}

TEST_CASE("@vztrace.ignore leaves out a function and all it calls, and keeps the nesting",
          "[api]") {
    const auto run = run_api_script("ignore.py");
    const Trace& trace = run.trace;
    CHECK(trace.nesting_problem().empty());
    for (const auto& [name, line] : std::vector<std::pair<std::string, int>>{
             {"noisy", 14}, {"helper", 10}, {"K.method", 24}, {"Quiet.a", 31}, {"Quiet.b", 34}}) {
        INFO(name);
        CHECK(trace.count(py_name(name, "ignore.py", line)) == 0);
    }
    const std::string caller = py_name("caller", "ignore.py", 43);
    CHECK(parents_of_all(trace, py_name("leaf", "ignore.py", 6)) ==
          std::vector<std::string>{py_name("sibling", "ignore.py", 39)});
    CHECK(parent_of(trace, only(trace, py_name("sibling", "ignore.py", 39))) == caller);
    CHECK(parent_of(trace, only(trace, caller)) == py_name("<module>", "ignore.py", 1));
    CHECK(trace.instants_named("inside ignored").empty());
    CHECK(trace.count("span inside ignored") == 0);
}

// A call left out took the exception or return value of its end with it, but not the
// record of it, which went to the next record kept: a caller that returned was shown
// ending by the ignored call's KeyError, a C call with its return value, a yield with
// that of a call past --max-stack-depth.
TEST_CASE("a call left out takes the exception or value it ends with along", "[api]") {
    const auto run = run_api_script(
        "left_out_details.py", {"--log-exception", "--log-func-retval", "--max-stack-depth", "3"});
    const Trace& trace = run.trace;
    CHECK(trace.nesting_problem().empty());
    CHECK(trace.count_prefix("builtins.len") >= 3);  // python's start-up calls it too
    CHECK(trace.count(py_name("at_the_limit", "left_out_details.py", 25)) == 2);  // start, resume
    CHECK(trace.count_prefix("too_deep (") == 0);
    CHECK(trace.count_prefix("paused_returns (") == 0);
    CHECK(trace.count_prefix("ignored_") == 0);
    std::size_t with_args = 0;
    for (const TraceEvent& slice : trace.slices) {
        for (const auto& [key, value] : slice.args) {
            INFO(slice.name << ": " << key << " = " << value);
            CHECK(value.find("LEFT-OUT") == std::string::npos);
            ++with_args;
        }
    }
    CHECK(with_args > 0);  // the calls kept have theirs (main's None at least)
}

// The mark went on the code object, which the functions one decorator wraps share (and
// the closures of one def): @vztrace.ignore on one wrapped function left out every other
// wrapped function's calls, and @vztrace.sparse kept them all.
TEST_CASE("ignore and sparse mark the function given, not every function sharing its code",
          "[api]") {
    const std::string file = "ignore_shared.py";
    const std::string wrapper = py_name("logged.<locals>.wrapper", file, 12);
    const std::string closure = py_name("make.<locals>.closure", file, 31);
    SECTION("ignore") {
        const auto run = run_api_script(file);
        CHECK(run.result.out == "17\n");
        const Trace& trace = run.trace;
        CHECK(trace.count(py_name("marked", file, 19)) == 0);
        CHECK(trace.count(py_name("unmarked", file, 25)) == 2);
        CHECK(trace.count(wrapper) == 2);
        CHECK(trace.count(closure) == 2);
        CHECK(trace.count(py_name("Thing.method", file, 42)) == 0);
        CHECK(trace.count(py_name("both", file, 49)) == 0);
        CHECK(trace.nesting_problem().empty());
    }
    SECTION("sparse") {
        const auto run = run_api_script(file, {"--log-sparse"}, {"sparse"});
        CHECK(run.result.out == "17\n");
        const Trace& trace = run.trace;
        CHECK(trace.count(wrapper) == 1);
        CHECK(trace.count(closure) == 1);
        CHECK(trace.count(py_name("Thing.method", file, 42)) == 1);
        CHECK(trace.count(py_name("both", file, 49)) == 0);  // ignored too
        CHECK(trace.slices.size() == 3);
    }
}

// The writer read a symbol's flags when it encoded the call: a call made before
// vztrace.ignore(f) was left out, or kept, by whether its records were still in memory. And
// a class's properties were not among its functions (fget, fset and a cached_property's
// func are no methods), nor could a property be given alone.
TEST_CASE("ignore and sparse given at run time change only later calls and cover properties",
          "[api]") {
    const std::string file = "marked_late.py";
    for (const std::string between : {"0", "300000"}) {
        INFO(between << " calls between");
        const auto run = run_api_script(file, {}, {between});
        CHECK(run.result.out == "3 9\n0.5\n");
        const Trace& trace = run.trace;
        CHECK(trace.count(py_name("late_ignored", file, 19)) == 1);
        CHECK(trace.count(py_name("late_sparse", file, 23)) == 2);
        // Shape's __init__, property getter and setter, cached property; Plain's property.
        CHECK(trace.count_prefix("Shape.") == 0);
        CHECK(trace.count_prefix("Plain.half (") == 0);
        // late_ignored(1), late_sparse twice.
        CHECK(trace.count(py_name("leaf", file, 11)) == 3);
        CHECK(trace.nesting_problem().empty());
        const auto sparse = run_api_script(file, {"--log-sparse"}, {between});
        CHECK(sparse.trace.count(py_name("late_sparse", file, 23)) == 1);
        CHECK(sparse.trace.slices.size() == 1);
    }
}

TEST_CASE("@vztrace.sparse under --log-sparse records only the decorated functions and spans",
          "[api]") {
    const std::string kept = py_name("kept", "sparse.py", 9);
    const std::string plain = py_name("plain", "sparse.py", 5);
    SECTION("with --log-sparse") {
        const auto run = run_api_script("sparse.py", {"--log-sparse"});
        const Trace& trace = run.trace;
        CHECK(trace.count(kept) == 3);
        CHECK(trace.count("region") == 1);
        CHECK(trace.slices.size() == 4);
        CHECK(trace.instants_named("mark").size() == 1);
    }
    SECTION("with --log-sparse and nothing decorated: a warning says why the trace is empty") {
        TempDir dir;
        const std::string trace = dir.file(vztrace::testing::trace_name("trace"));
        const auto result = run_vztrace({"--log-sparse", "-o", trace, script("fib5.py")});
        CHECK(result.status() == 0);
        CHECK(result.err.find("vztrace: warning: --log-sparse recorded no call: only functions "
                              "decorated with @vztrace.sparse are recorded, and none of them "
                              "ran\n") != std::string::npos);
        CHECK(load_trace(trace).slices.empty());
        // Decorated functions that ran: no such warning.
        const auto kept_run = run_vztrace({"--log-sparse", "-o", trace, script("api/sparse.py")});
        CHECK(kept_run.err.find("warning") == std::string::npos);
    }
    SECTION("without it, @vztrace.sparse changes nothing") {
        const auto run = run_api_script("sparse.py");
        const Trace& trace = run.trace;
        CHECK(trace.count(kept) == 3);
        CHECK(trace.count(plain) == 5);
        CHECK(trace.count(py_name("main", "sparse.py", 14)) == 1);
        CHECK(parents_of_all(trace, plain).back() == "region");
    }
}

TEST_CASE("the API works from another thread and from a signal handler", "[api]") {
    const auto run = run_api_script("threads_signals.py");
    const Trace& trace = run.trace;
    CHECK(run.result.out == "done\n");
    CHECK(trace.nesting_problem().empty());

    // Three signals, the second while paused.
    const auto from_signal = trace.instants_named("from signal");
    REQUIRE(from_signal.size() == 2);
    for (const auto& instant : from_signal) {
        CHECK(instant.tid == instant.pid);
        CHECK(instant.args == TraceArgs{{"signum", std::to_string(SIGUSR1)}});
    }
    CHECK(values_of(trace, "signals") == std::vector<double>{1, 1});
    const std::string handler = py_name("handler", "threads_signals.py", 8);
    CHECK(parents_of_all(trace, "signal span") == std::vector<std::string>{handler, handler});
    const auto in_outer = all_named(trace, "signal span").back();
    const auto around = trace.ancestors(in_outer);
    CHECK(std::find(around.begin(), around.end(), "outer span") != around.end());

    const auto from_thread = trace.instants_named("from thread");
    REQUIRE(from_thread.size() == 1);
    CHECK(from_thread[0].tid != from_thread[0].pid);
    CHECK(from_thread[0].args == TraceArgs{{"thread", "worker"}});
    CHECK(trace.threads.at(from_thread[0].tid) == "worker");
    const TraceEvent thread_span = only(trace, "thread span");
    CHECK(thread_span.tid == from_thread[0].tid);
    CHECK(parent_of(trace, thread_span) == py_name("work", "threads_signals.py", 15));
    CHECK(values_of(trace, "thread counter") == std::vector<double>{2});
}

TEST_CASE("the API works in a forked child and in a spawned child", "[api]") {
    const auto run = run_api_script("children.py", {}, {"--spawn"});
    const Trace& trace = run.trace;
    CHECK(run.result.out == "fork child active True\nspawn exit 0\nparent active True\n");
    const std::int64_t root = only(trace, "posix.fork").pid;

    const auto forked = trace.instants_named("forked instant");
    REQUIRE(forked.size() == 1);
    CHECK(forked[0].pid != root);
    CHECK(forked[0].args == TraceArgs{{"n", "1"}});
    const TraceEvent forked_span = only(trace, "forked span");
    CHECK(forked_span.pid == forked[0].pid);
    CHECK(parent_of(trace, forked_span) == py_name("in_fork_child", "children.py", 15));
    const auto forked_counter = trace.counters_named("forked counter");
    REQUIRE(forked_counter.size() == 1);
    CHECK(forked_counter[0].pid == forked[0].pid);
    CHECK(forked_counter[0].value == 7);

    const auto spawned = trace.instants_named("spawned instant");
    REQUIRE(spawned.size() == 1);
    CHECK(spawned[0].pid != root);
    CHECK(spawned[0].pid != forked[0].pid);
    CHECK(trace.processes.at(spawned[0].pid) == "SpawnProcess-1");
    const TraceEvent target = only(trace, "spawn target");
    CHECK(target.pid == spawned[0].pid);
    CHECK(target.args == TraceArgs{{"where", "spawn"}});
    CHECK(parent_of(trace, only(trace, py_name("spawned", "children.py", 9))) == "spawn target");
    CHECK(values_of(trace, "spawned counter") == std::vector<double>{5});
}

TEST_CASE("in a process that is not traced every call of the API does nothing", "[api]") {
    const auto run = run_api_script("children.py", {"--ignore-multiprocess"});
    CHECK(run.result.out == "fork child active False\nparent active True\n");
    CHECK(run.trace.instants_named("forked instant").empty());
    CHECK(run.trace.count("forked span") == 0);
    CHECK(run.trace.counters_named("forked counter").empty());
}
