// CPython's own test files for what vztrace touches (threads, fork, signals, profilers,
// sys.monitoring) run under vztrace with the same outcome as under python. Built where
// the python ships its test package (pyenv and source builds do; Debian splits it out).
#include <catch2/catch.hpp>
#include <regex>
#include <set>

#include "e2e/e2e.hpp"

#ifdef VZTRACE_TEST_CPYTHON_TESTS

using namespace vztrace::e2e;
using vztrace::testing::load_trace;
using vztrace::testing::RunOptions;
using vztrace::testing::TempDir;

namespace {

// regrtest leaves its work files in the current directory.
RunOptions in_dir(const TempDir& dir) {
    RunOptions options;
    options.cwd = dir.path();
    options.timeout_seconds = 280;
    return options;
}

struct Outcome {
    int status = 0;
    std::string tests_run;           // regrtest's "Total tests: run=N ..." line
    std::set<std::string> failures;  // "FAIL: test_x (...)" and "ERROR: ..." headers
};

Outcome outcome_of(const vztrace::testing::ProcessResult& result) {
    Outcome outcome;
    outcome.status = result.status();
    const std::string text = result.out + result.err;
    static const std::regex failure(R"(^(FAIL|ERROR): .*$)", std::regex::multiline);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), failure);
         it != std::sregex_iterator(); ++it) {
        outcome.failures.insert(it->str());
    }
    static const std::regex total(R"(Total tests: run=\d+)");
    std::smatch match;
    if (std::regex_search(text, match, total)) outcome.tests_run = match.str();
    return outcome;
}

// Runs `-m test ARGS` under python and under vztrace: the same tests run, and the same fail
// (these machines' pyenv 3.11 fails test_import_from_another_thread under python itself).
void check_same_outcome(const std::vector<std::string>& test_args,
                        const std::vector<std::string>& vztrace_options = {}) {
    TempDir python_dir;
    TempDir vztrace_dir;
    std::vector<std::string> python_argv = {kPython, "-m", "test"};
    python_argv.insert(python_argv.end(), test_args.begin(), test_args.end());
    std::vector<std::string> vztrace_argv = {"--quiet", "-o",
                                             vztrace_dir.file(vztrace::testing::trace_name("t"))};
    vztrace_argv.insert(vztrace_argv.end(), vztrace_options.begin(), vztrace_options.end());
    vztrace_argv.insert(vztrace_argv.end(), {"-m", "test"});
    vztrace_argv.insert(vztrace_argv.end(), test_args.begin(), test_args.end());
    const auto python = vztrace::testing::run_process(python_argv, in_dir(python_dir));
    const auto traced = run_vztrace(vztrace_argv, in_dir(vztrace_dir));
    INFO("--- python\n"
         << python.out << python.err << "\n--- vztrace\n"
         << traced.out << traced.err);
    CHECK_FALSE(traced.timed_out);
    const Outcome expected = outcome_of(python);
    const Outcome actual = outcome_of(traced);
    CHECK_FALSE(expected.tests_run.empty());
    CHECK(actual.tests_run == expected.tests_run);
    CHECK(actual.failures == expected.failures);
    CHECK(actual.status == expected.status);
    const auto trace = load_trace(vztrace_dir.file(vztrace::testing::trace_name("t")));
    CHECK(trace.slices.size() > 1000);
}

}  // namespace

TEST_CASE("CPython's test_threading passes under vztrace as under python", "[cpython]") {
    // Forks from threads, joins at shutdown, signals and finalization: before, vztrace's
    // signal thread kept a child forked from a thread alive for good (the run hung), and
    // every fork warned that the process was multi-threaded.
    check_same_outcome({"-v", "test_threading"});
}

TEST_CASE("CPython's profiler tests pass under vztrace as under python", "[cpython]") {
    // Before: profile.Profile saw the C return of the sys.setprofile call that installed
    // it ("Bad return"), and test_profile failed whole.
    check_same_outcome({"-v", "test_profile", "test_cprofile", "test_sys_setprofile"});
}

TEST_CASE("CPython's thread and profiler tests pass with the frame hook", "[cpython]") {
    // --hook frame: the frame-evaluation hook for Python frames, whatever it costs, beside
    // the mechanism of C calls; the program's threads, forks, profilers and trace
    // functions (which make it give way) see what they see under python.
    check_same_outcome(
        {"-v", "test_threading", "test_profile", "test_cprofile", "test_sys_setprofile"},
        {"--hook", "frame"});
}

#if VZTRACE_TEST_PYTHON_MINOR >= 12
TEST_CASE("CPython's test_monitoring passes under vztrace, with C calls recorded", "[cpython]") {
    // Tools the tests turn on no longer see the C return of the call that turned them on.
    // 3.13 checks that a call site specialises, which one instrumented for CALL does not.
    check_same_outcome({"-v", "test_monitoring", "-i", "test_no_unwind_for_shim_frame"});
}

TEST_CASE("CPython's test_monitoring passes under vztrace --ignore-c-function", "[cpython]") {
    check_same_outcome({"-v", "test_monitoring"}, {"--ignore-c-function"});
}
#endif

#if VZTRACE_TEST_PYTHON_MINOR >= 13  // PyMonitoring_Fire*Event is new in 3.13
TEST_CASE("events that C code fires with objects other than code objects are passed over",
          "[cpython]") {
    check_same_outcome({"-v", "test_monitoring", "-m", "TestCApi*"});
}
#endif

#endif
