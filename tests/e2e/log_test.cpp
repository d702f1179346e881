// What the --log-* options add to a trace: the arguments, return value and exception of
// each Python call, garbage collections, prints, audit events and asyncio tasks. Each is
// exact, leaves the program's output as python's, and is absent when its option is off.
#include <algorithm>
#include <catch2/catch.hpp>
#include <set>

#include "e2e/e2e.hpp"

using namespace vztrace::e2e;
using vztrace::testing::RunOptions;
using vztrace::testing::TempDir;
using vztrace::testing::Trace;
using vztrace::testing::TraceEvent;

namespace {

struct LoggedRun {
    vztrace::testing::ProcessResult python;
    vztrace::testing::ProcessResult vztrace;
    Trace trace;
};

// `script` under python, and under vztrace with `options`; both outputs and the trace.
LoggedRun run_logged(const std::vector<std::string>& options, const std::string& script_name) {
    TempDir dir;
    const std::string trace_path = dir.file(vztrace::testing::trace_name("trace"));
    std::vector<std::string> args = {"--quiet", "-o", trace_path};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back(script(script_name));
    LoggedRun run;
    run.python = vztrace::testing::run_process({kPython, script(script_name)});
    run.vztrace = run_vztrace(args);
    INFO(run.vztrace.err);
    REQUIRE(run.vztrace.status() == 0);
    run.trace = vztrace::testing::load_trace(trace_path);
    return run;
}

// The slices of the script's own function `qualname`, in time order.
std::vector<TraceEvent> calls_of(const Trace& trace, const std::string& qualname,
                                 const std::string& script_name) {
    std::vector<TraceEvent> calls;
    for (const auto& e : trace.slices) {
        if (e.name.rfind(qualname + " (" + script(script_name) + ":", 0) == 0) calls.push_back(e);
    }
    std::sort(calls.begin(), calls.end(),
              [](const auto& a, const auto& b) { return a.ts_ns < b.ts_ns; });
    return calls;
}

using Args = std::map<std::string, std::string>;

}  // namespace

TEST_CASE("log: --log-func-args records each argument's repr under its parameter's name") {
    const auto run = run_logged({"--log-func-args"}, "log_calls.py");
    CHECK(run.vztrace.out == run.python.out);
    const auto add = calls_of(run.trace, "add", "log_calls.py");
    REQUIRE(add.size() == 1);
    CHECK(add[0].args == Args{{"a", "1"},
                              {"b", "2"},
                              {"rest", "(3,)"},
                              {"scale", "2"},
                              {"options", "{'flag': True}"}});
    // A generator's arguments at its first start only, not at each resume.
    const auto numbers = calls_of(run.trace, "numbers", "log_calls.py");
    REQUIRE(numbers.size() == 3);
    CHECK(numbers[0].args == Args{{"start", "10"}});
    CHECK(numbers[1].args.empty());
    CHECK(numbers[2].args.empty());
    // vztrace's own repr calls are not the program's calls.
    CHECK(run.trace.count_prefix("BadRepr.__repr__") == 0);
    CHECK(run.trace.count_prefix("Long.__repr__") == 0);
}

TEST_CASE("log: arguments past the 16 KiB an event takes are counted, not dropped unsaid") {
    // Before (hunt AG): of 40 arguments of 1000 characters, 31 were kept and 9 left out,
    // with nothing in the trace or on stderr to say so.
    const auto run = run_logged({"--log-func-args"}, "log_many_args.py");
    std::vector<std::pair<std::string, Args>> events;
    for (const auto& call : run.trace.named("many (")) events.emplace_back(call.name, call.args);
    for (const auto& instant : run.trace.instants) {
        if (instant.name == "many_instant") events.emplace_back(instant.name, instant.args);
    }
    REQUIRE(events.size() == 2);
    for (const auto& [name, args] : events) {
        INFO(name);
        CHECK(args.size() == 32);
        CHECK(args.count("vztrace: not recorded") == 1);
        if (args.count("vztrace: not recorded") == 1) {
            CHECK(args.at("vztrace: not recorded") ==
                  "9 arguments more: an event's arguments take at most 16 KiB");
        }
    }
    CHECK(events[0].second.count("a30") == 1);
    CHECK(events[0].second.count("a31") == 0);
    CHECK(events[1].second.count("k30") == 1);
    CHECK(events[1].second.count("k31") == 0);
}

TEST_CASE("a repr that raises is recorded as failed, and the program runs as under python") {
    const auto run = run_logged({"--log-func-args", "--log-func-retval"}, "log_calls.py");
    CHECK(run.vztrace.out == run.python.out);
    CHECK(run.vztrace.err == run.python.err);
    const auto takes = calls_of(run.trace, "takes", "log_calls.py");
    REQUIRE(takes.size() == 2);
    CHECK(takes[0].args.at("obj") == "<repr failed: ValueError>");
    CHECK(takes[0].args.at("return_value") == "'ok'");
}

// It was lost: the error was cleared before it was looked at.
TEST_CASE("a Ctrl-C that arrives while a repr is taken reaches the program") {
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("t"));
    const auto result =
        run_vztrace({"--quiet", "--log-func-args", "-o", trace, script("repr_interrupted.py")});
    CHECK(result.status() == 0);
    CHECK(result.out == "KeyboardInterrupt reached the program\n");
    const auto takes =
        calls_of(vztrace::testing::load_trace(trace), "takes", "repr_interrupted.py");
    REQUIRE(takes.size() == 1);
    CHECK(takes[0].args.at("obj") == "<repr failed: KeyboardInterrupt>");
}

TEST_CASE("what a signal handler raises inside a repr vztrace takes reaches the program once") {
    // On 3.12 the argument's repr is taken at the call's start, before its first
    // instruction, and an int's repr runs the handlers of signals that have arrived. The
    // handler's TimeoutError was recorded as the repr's failure and never reached the
    // program; a KeyboardInterrupt was raised again through SIGINT's handler, so a handler
    // of the program's own ran twice.
    TempDir dir;
    const std::string program = script("signal_in_repr.py");
    const std::string trace = dir.file(vztrace::testing::trace_name("t"));
    const auto python = vztrace::testing::run_process({kPython, program});
    REQUIRE(python.status() == 0);
    CHECK(python.out ==
          "TimeoutError raised in ['delivered_at_start', 'takes', 'on_alarm']\n"
          "KeyboardInterrupt raised in ['delivered_at_start', 'takes', 'on_interrupt']\n"
          "the SIGINT handler ran 1 time(s)\n");
    const auto result = run_vztrace({"--quiet", "--log-func-args", "-o", trace, program});
    INFO(result.err);
    CHECK(result.status() == 0);
    CHECK(result.out == python.out);
    const auto takes = calls_of(vztrace::testing::load_trace(trace), "takes", "signal_in_repr.py");
    CHECK(takes.size() == 2);
}

TEST_CASE("a repr that raises runs none of the code of a signal handler object's class") {
    // Before: vztrace read the handler's `func` (taking any object that has one for a
    // functools.partial) and its `__call__` through getattr, running the program's
    // property and __getattr__, which printed into the program's output.
    TempDir dir;
    const std::string program = script("handler_object.py");
    const auto python = vztrace::testing::run_process({kPython, program});
    REQUIRE(python.out == "1\n");
    const auto result = run_vztrace(
        {"--quiet", "--log-func-args", "-o", dir.file(vztrace::testing::trace_name("t")), program});
    INFO(result.err);
    CHECK(result.status() == 0);
    CHECK(result.out == python.out);
}

TEST_CASE("a long repr is cut at 512 bytes, ending with ...") {
    const auto run = run_logged({"--log-func-args"}, "log_calls.py");
    const auto takes = calls_of(run.trace, "takes", "log_calls.py");
    REQUIRE(takes.size() == 2);
    const std::string& obj = takes[1].args.at("obj");
    CHECK(obj.size() == 512);
    CHECK(obj == std::string(509, 'x') + "...");
}

TEST_CASE("log: --log-func-retval records what a call returns, not what a generator yields") {
    const auto run = run_logged({"--log-func-retval"}, "log_calls.py");
    const auto add = calls_of(run.trace, "add", "log_calls.py");
    REQUIRE(add.size() == 1);
    CHECK(add[0].args == Args{{"return_value", "6"}});
    const auto numbers = calls_of(run.trace, "numbers", "log_calls.py");
    REQUIRE(numbers.size() == 3);
    CHECK(numbers[0].args.empty());
    CHECK(numbers[1].args.empty());
    CHECK(numbers[2].args == Args{{"return_value", "'done'"}});
    CHECK(calls_of(run.trace, "fails", "log_calls.py").at(0).args.empty());
}

TEST_CASE("log: --log-exception records the type and message of the exception a call ends by") {
    const auto run = run_logged({"--log-exception"}, "log_calls.py");
    CHECK(run.vztrace.out == run.python.out);
    const auto fails = calls_of(run.trace, "fails", "log_calls.py");
    REQUIRE(fails.size() == 1);
    // 3.11 hides it from the profile function: the frame-evaluation companion gives it.
    CHECK(fails[0].args == Args{{"exception", "KeyError: 'missing 7'"}});
    CHECK(calls_of(run.trace, "add", "log_calls.py").at(0).args.empty());
    CHECK(contains(run.trace.metadata.at("hook"),
                   kPythonMinor >= 12 ? "sys.monitoring" : "companion"));
}

TEST_CASE("log: --log-exception names a C function's exception, and one raised 12,000 deep") {
    const auto run = run_logged({"--log-exception"}, "log_exception.py");
    CHECK(run.vztrace.out == run.python.out);
    CHECK(run.vztrace.out ==
          "ValueError('math domain error')\ncaught ValueError('math domain error')\n"
          "caught KeyError('converted')\ncaught bottom 12000\ncaught bottom 3\n");
    const auto converts = calls_of(run.trace, "converts", "log_exception.py");
    REQUIRE(converts.size() == 1);
    CHECK(converts[0].args == Args{{"exception", "KeyError: 'converted'"}});
    const auto propagates = calls_of(run.trace, "propagates", "log_exception.py");
    REQUIRE(propagates.size() == 1);
    CHECK(propagates[0].args == Args{{"exception", "ValueError: math domain error"}});
    // math.sqrt's slice within each caller. CPython hides its exception: 3.12+ takes it
    // from RAISE, next in the calling frame; 3.11 from the traceback of what the frame
    // sees next: the exception it is left by, or handles while it makes a call.
    const auto sqrt_in = [&run](const std::string& caller) {
        const auto callers = calls_of(run.trace, caller, "log_exception.py");
        REQUIRE(callers.size() == 1);
        std::vector<TraceEvent> found;
        for (const auto& e : run.trace.slices) {
            if (e.name == "math.sqrt" && e.ts_ns >= callers[0].ts_ns &&
                e.end_ns() <= callers[0].end_ns()) {
                found.push_back(e);
            }
        }
        REQUIRE(found.size() == 1);
        return found[0].args;
    };
    const Args raised = {{"exception", "ValueError: math domain error"}};
    CHECK(sqrt_in("handled_with_call") == raised);
    CHECK(sqrt_in("propagates") == raised);
    // 3.11 never sees these: handled without a call, and replaced before the frame ends.
    // Never another exception's text.
    CHECK(sqrt_in("handled_quietly") == (kPythonMinor >= 12 ? raised : Args{}));
    CHECK(sqrt_in("converts") == (kPythonMinor >= 12 ? raised : Args{}));
    // Every call down the 12,000 frames and the 4 near the top, each ended by the
    // exception. On 3.11 the companion's frames stop 150 deep (each is a C call): the deeper
    // ones run inline, as under python, and keep no text; the slot is back for down(3).
    const auto down = calls_of(run.trace, "down", "log_exception.py");
    REQUIRE(down.size() == 12001 + 4);
    const auto with_text = std::count_if(down.begin(), down.end(), [](const TraceEvent& e) {
        return e.args == Args{{"exception", "RuntimeError: bottom"}};
    });
    if (kPythonMinor >= 12) {
        CHECK(with_text == 12005);
    } else {
        CHECK(with_text > 100);
        CHECK(with_text <= 150 + 4);
        for (std::size_t i = down.size() - 4; i < down.size(); ++i) {
            CHECK(down[i].args == Args{{"exception", "RuntimeError: bottom"}});
        }
    }
    CHECK(run.trace.nesting_problem().empty());
}

TEST_CASE("log: --hook frame with --log-func-args is refused with one line and status 2") {
    const auto result =
        run_vztrace({"--quiet", "--hook", "frame", "--log-func-args", script("fib5.py")});
    CHECK(result.status() == 2);
    CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
    CHECK(result.err.rfind("vztrace: error: --hook and --log-func-args do not go together", 0) ==
          0);
}

TEST_CASE("log: --log-gc records gc.collect(1) as a slice with its generation and counts") {
    const auto run = run_logged({"--log-gc"}, "log_runtime.py");
    const auto collections = run.trace.named("gc");
    std::size_t generation_1 = 0;
    for (const auto& e : collections) {
        if (e.name != "gc") continue;
        CHECK(e.args.size() == 3);
        CHECK(e.args.count("collected") == 1);
        CHECK(e.args.count("uncollectable") == 1);
        if (e.args.at("generation") == "1") ++generation_1;
    }
    CHECK(generation_1 >= 1);
    // gc.collect(1) is the C call around its collection.
    bool nested = false;
    for (const auto& e : collections) {
        if (e.name == "gc" && e.args.at("generation") == "1") {
            const auto around = run.trace.ancestors(e);
            nested = nested || (!around.empty() && around.front() == "gc.collect");
        }
    }
    CHECK(nested);
}

TEST_CASE("log: --log-print records what print wrote, and the output is python's byte for byte") {
    const auto run = run_logged({"--log-print"}, "log_runtime.py");
    CHECK(run.vztrace.out == run.python.out);
    CHECK(run.vztrace.err == run.python.err);
    std::vector<std::string> texts;
    for (const auto& e : run.trace.instants_named("print")) texts.push_back(e.args.at("text"));
    CHECK(texts ==
          std::vector<std::string>{"hello-42-shown!\n", "to stderr\n", "\n", "in file\n", "end\n"});
}

// A lone surrogate lost the whole piece print wrote (its text was "found  ok"), a thread's
// or a task's name ("Thread <tid>", "? (step)"), and a NUL cut a name there; sys.audit of
// a name that is not a str failed, where python with no hook of the program's does nothing.
TEST_CASE("log: text that is not plain UTF-8 keeps its place in the trace and the program") {
    const auto run = run_logged({"--log-print", "--log-async"}, "odd_text.py");
    CHECK(run.vztrace.out == run.python.out);
    CHECK(run.vztrace.err == run.python.err);
    CHECK(contains(run.vztrace.out, "123 nothing\nb'bytes' nothing\n'lone\\ud800event' nothing\n"));
    CHECK(contains(run.vztrace.out, "123 TypeError\n'lone\\ud800event' UnicodeEncodeError\n"));
    const auto prints = run.trace.instants_named("print");
    REQUIRE(!prints.empty());
    // Lone surrogates escaped, as Python's backslashreplace writes them (they were '?', and
    // names that differed there were one).
    CHECK(prints[0].args.at("text") == "found data_\\udcff.csv ok\n");
    std::set<std::string> threads;
    for (const auto& [tid, name] : run.trace.threads) threads.insert(name);
    CHECK(threads.count("lone\\ud800sur") == 1);
    CHECK(threads.count(std::string("nul\0after", 9)) == 1);
    std::set<std::string> tracks;
    for (const auto& e : run.trace.slices) {
        if (!e.track.empty()) tracks.insert(e.track);
    }
    CHECK(tracks.count("lone\\ud800 (step)") == 1);
    CHECK(tracks.count(std::string("nul\0x (step)", 12)) == 1);
}

TEST_CASE("log: --log-audit=open records open() as instants and no other event") {
    const auto run = run_logged({"--log-audit=open"}, "log_runtime.py");
    CHECK(run.vztrace.out == run.python.out);
    std::size_t opens_of_the_file = 0;
    for (const auto& e : run.trace.instants) {
        CHECK(e.name == "open");
        const std::string& args = e.args.at("args");
        if (args.find("vztrace_log_runtime_") != std::string::npos) {
            CHECK(args.find("'w'") != std::string::npos);
            ++opens_of_the_file;
        }
    }
    CHECK(opens_of_the_file == 1);
}

TEST_CASE("log: no repr is taken for what the trace leaves out: paused, or past --max-size") {
    // They ran the program's __repr__ and __str__ for nothing: 2 reprs while paused, and
    // 5 (arguments, an audit event's, a return value, an exception) once stopped.
    const auto run = run_logged({"--log-func-args", "--log-func-retval", "--log-exception",
                                 "--log-audit", "--max-size", "1M"},
                                "log_reprs_left_out.py");
    INFO(run.vztrace.err);
    CHECK(run.python.out == "while paused 0\nonce stopped 0\n");
    CHECK(run.vztrace.out == run.python.out);
    CHECK(contains(run.vztrace.err, "stopped True"));
    // Neither take() is in the trace: one was begun while paused, one after the stop.
    CHECK(calls_of(run.trace, "take", "log_reprs_left_out.py").empty());
}

TEST_CASE("log: --log-async puts each asyncio task on its own track, a slice per step") {
    const auto run = run_logged({"--log-async"}, "log_async.py");
    CHECK(run.vztrace.out == run.python.out);
    std::map<std::string, std::size_t> steps;
    for (const auto& e : run.trace.slices) {
        if (e.track.empty()) continue;
        CHECK(e.name == "running");
        ++steps[e.track];
    }
    // Each worker runs three times: to its first sleep, to its second, to its end.
    CHECK(steps["first (worker)"] == 3);
    CHECK(steps["second (worker)"] == 3);
    CHECK(steps.count("Task-1 (main)") == 1);
    CHECK(run.trace.nesting_problem().empty());
}

TEST_CASE("log: a task's step that pauses the recording keeps its end, as a call does") {
    const auto run = run_logged({"--log-async"}, "log_async_pause.py");
    CHECK(run.vztrace.out == run.python.out);
    std::vector<TraceEvent> steps;
    for (const auto& e : run.trace.slices) {
        if (e.track == "Task-1 (worker)") steps.push_back(e);
    }
    std::sort(steps.begin(), steps.end(),
              [](const auto& a, const auto& b) { return a.ts_ns < b.ts_ns; });
    CHECK(steps.size() == 4);  // the one begun while paused is left out
    for (std::size_t i = 0; i < steps.size(); ++i) {
        INFO(i);
        CHECK_FALSE(steps[i].unfinished);
        if (i > 0) CHECK(steps[i - 1].end_ns() <= steps[i].ts_ns);
    }
    CHECK(run.trace.nesting_problem().empty());
}

TEST_CASE("log: --log-async neither waits for asyncio's import nor adds calls to it") {
    // Before: the audit hook's look for asyncio took its module lock, held by the thread
    // importing it while it waited for a thread of its own: the program hung (3 runs of 3).
    // And it ran importlib's code for each audit event of the import: 300 to 400 calls of
    // _lock_unlock_module the program never made.
    const auto logged = run_logged({"--log-async"}, "log_async_import.py");
    CHECK(logged.vztrace.out == logged.python.out);
    CHECK(logged.vztrace.out == "imported asyncio\n");
    const auto plain = run_logged({}, "log_async_import.py");
    for (const std::string name : {"_lock_unlock_module (", "_get_module_lock (", "<module> ("}) {
        INFO(name);
        CHECK(logged.trace.count_prefix(name) == plain.trace.count_prefix(name));
    }
    CHECK(logged.trace.slices.size() == plain.trace.slices.size());
}

TEST_CASE("log: --log-async keeps the tasks of a process's two images on tracks of their own") {
    // Before (hunt AE): a task track's uuid came from its name's number among the image's
    // names, which the next image gives again: Task-1 of each image was one track.
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("trace"));
    const auto run =
        run_vztrace({"--quiet", "--log-async", "-o", trace, script("log_async_exec.py")});
    REQUIRE(run.status() == 0);
    const auto report = run_vztrace({"report", trace, "--by", "thread", "--format", "json"});
    REQUIRE(report.status() == 0);
    // Each image's main task and the two of asyncio.run's end: 6 tracks, 8 steps.
    CHECK(report.out.find("\"tracks\": 6") != std::string::npos);
    CHECK(report.out.find("\"Task-1 (first_image)\"") != std::string::npos);
    CHECK(report.out.find("\"Task-1 (second_image)\"") != std::string::npos);
}

TEST_CASE("without the options, no argument, instant, gc slice or task track is recorded") {
    for (const std::string name : {"log_calls.py", "log_runtime.py", "log_async.py"}) {
        const auto run = run_logged({}, name);
        CHECK(run.vztrace.out == run.python.out);
        CHECK(run.trace.instants.empty());
        CHECK(run.trace.count("gc") == 0);
        for (const auto& e : run.trace.slices) {
            INFO(e.name);
            CHECK(e.args.empty());
            CHECK(e.track.empty());
        }
    }
}

TEST_CASE("log: --log-print reaches a child started with sys.executable and a fork") {
    const auto run = run_logged({"--log-print"}, "log_child.py");
    CHECK(run.vztrace.out == run.python.out);
    std::map<std::string, std::int64_t> pid_of;
    for (const auto& e : run.trace.instants_named("print")) pid_of[e.args.at("text")] = e.pid;
    REQUIRE(pid_of.size() == 3);
    const std::int64_t root = pid_of.at("from the root\n");
    CHECK(pid_of.at("from the child\n") != root);
    CHECK(pid_of.at("from the fork\n") != root);
}
