#include "launcher/command_line.hpp"

#include <stdlib.h>

#include <catch2/catch.hpp>

#include "embed/setup_error.hpp"

using vztrace::ExitCode;
using vztrace::SetupError;
using vztrace::launcher::Invocation;
using vztrace::launcher::parse_command_line;
using vztrace::launcher::parse_size;
using Args = std::vector<std::string>;

namespace {

Invocation parse(Args args) {
    args.insert(args.begin(), "vztrace");
    return parse_command_line(args);
}

ExitCode usage_code(Args args) {
    try {
        parse(std::move(args));
    } catch (const SetupError& error) {
        return error.code();
    }
    return static_cast<ExitCode>(0);
}

// Clears the VZTRACE_* variables before and after one test.
struct CleanEnvironment {
    CleanEnvironment() { clear(); }
    ~CleanEnvironment() { clear(); }
    static void clear() {
        for (const char* name :
             {"VZTRACE_OUTPUT", "VZTRACE_QUIET", "VZTRACE_IGNORE_C_FUNCTION", "VZTRACE_MAX_MEMORY",
              "VZTRACE_IGNORE_MULTIPROCESS", "VZTRACE_PID_SUFFIX", "VZTRACE_OUTPUT_DIR",
              "VZTRACE_HOOK", "VZTRACE_RING", "VZTRACE_TRACER_ENTRIES"}) {
            unsetenv(name);
        }
    }
};

}  // namespace

TEST_CASE("run SCRIPT hands the script and its arguments to python untouched") {
    CleanEnvironment env;
    const auto inv = parse({"run", "app.py", "-o", "x", "--quiet"});
    CHECK(inv.python_argv == Args{"app.py", "-o", "x", "--quiet"});
    CHECK(inv.trace.output == "result.pftrace");
    CHECK_FALSE(inv.trace.quiet);
    CHECK(inv.process_name == "app.py");
}

TEST_CASE("vztrace options before and after the run keyword are vztrace's") {
    CleanEnvironment env;
    const auto before = parse({"-o", "t.json", "run", "app.py"});
    CHECK(before.trace.output == "t.json");
    CHECK(before.python_argv == Args{"app.py"});
    const auto after = parse({"run", "--quiet", "--output=u.json", "app.py", "a"});
    CHECK(after.trace.quiet);
    CHECK(after.trace.output == "u.json");
    CHECK(after.python_argv == Args{"app.py", "a"});
    const auto flags_first = parse({"--quiet", "-o", "v.json", "--ignore-c-function", "app.py"});
    CHECK(flags_first.trace.quiet);
    CHECK(flags_first.trace.output == "v.json");
    CHECK(flags_first.python_argv == Args{"app.py"});
}

TEST_CASE("options -m and -c end vztrace's options and keep python's argv") {
    CleanEnvironment env;
    const auto module = parse({"--ignore-c-function", "-m", "pkg.tool", "--flag"});
    CHECK(module.trace.ignore_c_function);
    CHECK(module.python_argv == Args{"-m", "pkg.tool", "--flag"});
    CHECK(module.process_name == "-m pkg.tool");
    const auto code = parse({"run", "-c", "print(1)", "x"});
    CHECK(code.python_argv == Args{"-c", "print(1)", "x"});
    CHECK(code.process_name == "-c print(1)");
    CHECK(parse({"-c", "import a\nrun()"}).process_name == "-c import a");
}

TEST_CASE("a python flag or a bare path in first position is python's argv (shebangs, children)") {
    CleanEnvironment env;
    CHECK(parse({"-u", "-B", "script.py"}).python_argv == Args{"-u", "-B", "script.py"});
    CHECK(parse({"-X", "utf8", "-W", "error", "s.py"}).python_argv ==
          Args{"-X", "utf8", "-W", "error", "s.py"});
    CHECK(parse({"/abs/script.py", "--output", "z"}).python_argv ==
          Args{"/abs/script.py", "--output", "z"});
    CHECK(parse({"-Esc", "pass"}).python_argv == Args{"-Esc", "pass"});
    CHECK(parse({"-"}).python_argv == Args{"-"});
    CHECK(parse({"--", "-u", "s.py"}).python_argv == Args{"-u", "s.py"});
    const auto dashed = parse({"--quiet", "--", "--", "-weird-name.py"});
    CHECK(dashed.python_argv == Args{"--", "-weird-name.py"});
    CHECK(dashed.process_name == "-weird-name.py");
}

TEST_CASE("unknown options, a missing program and missing values are usage errors (2)") {
    CleanEnvironment env;
    CHECK(usage_code({"--bogus", "app.py"}) == ExitCode::kUsage);
    CHECK(usage_code({"run", "--bogus", "app.py"}) == ExitCode::kUsage);
    CHECK(usage_code({"-Z", "app.py"}) == ExitCode::kUsage);
    CHECK(usage_code({"-u", "--nope", "app.py"}) == ExitCode::kUsage);
    CHECK(usage_code({}) == ExitCode::kUsage);
    CHECK(usage_code({"run"}) == ExitCode::kUsage);
    CHECK(usage_code({"-o"}) == ExitCode::kUsage);
    CHECK(usage_code({"-m"}) == ExitCode::kUsage);
    CHECK(usage_code({"--max-memory", "lots", "a.py"}) == ExitCode::kUsage);
}

TEST_CASE("the options --help and --version are vztrace's own") {
    CleanEnvironment env;
    const auto help = parse({"--help"});
    CHECK(help.action == Invocation::Action::kHelp);
    CHECK(help.help.find("--ignore-c-function") != std::string::npos);
    CHECK(help.help.find("VZTRACE_OUTPUT") != std::string::npos);
    CHECK(help.help.find("74") != std::string::npos);
    for (const char* command : {"vztrace report", "vztrace diff", "vztrace export",
                                "vztrace combine", "VZTRACE_HOOK", "VZTRACE_TRACER_ENTRIES"}) {
        CHECK(help.help.find(command) != std::string::npos);
    }
    CHECK(parse({"--version"}).action == Invocation::Action::kVersion);
}

TEST_CASE("VZTRACE_* variables set options and the command line wins") {
    CleanEnvironment env;
    setenv("VZTRACE_OUTPUT", "from-env.json", 1);
    setenv("VZTRACE_QUIET", "1", 1);
    setenv("VZTRACE_IGNORE_C_FUNCTION", "true", 1);
    setenv("VZTRACE_MAX_MEMORY", "64M", 1);
    const auto from_env = parse({"app.py"});
    CHECK(from_env.trace.output == "from-env.json");
    CHECK(from_env.trace.quiet);
    CHECK(from_env.trace.ignore_c_function);
    CHECK(from_env.trace.max_memory == 64ULL << 20);
    CHECK(parse({"-o", "cli.json", "app.py"}).trace.output == "cli.json");
}

TEST_CASE("sizes read with binary units") {
    CHECK(parse_size("1048576") == 1ULL << 20);
    CHECK(parse_size("512M") == 512ULL << 20);
    CHECK(parse_size("2G") == 2ULL << 30);
    CHECK(parse_size("1.5GiB") == 3ULL << 29);
    CHECK_THROWS_AS(parse_size("10"), SetupError);
    CHECK_THROWS_AS(parse_size("3Q"), SetupError);
}

TEST_CASE("option --tracer_entries is VizTracer's ring, counted in calls") {
    CleanEnvironment clean;
    // Two 16-byte records a call, in whole chunks of 4096, and two chunks more: the ring
    // gives up its oldest chunk whole and the newest is partly filled.
    CHECK(parse({"--tracer_entries", "1000000", "app.py"}).trace.ring == (489 + 2) * 4096 * 16);
    CHECK(parse({"--tracer-entries=10", "app.py"}).trace.ring == (1 + 2) * 4096 * 16);
    CHECK(parse({"app.py"}).trace.ring == 0);
    CHECK(usage_code({"--tracer_entries", "many", "app.py"}) == ExitCode::kUsage);
    CHECK(usage_code({"--tracer_entries", "0", "app.py"}) == ExitCode::kUsage);
    CHECK(usage_code({"--tracer_entries", "-5", "app.py"}) == ExitCode::kUsage);
    CHECK(usage_code({"--tracer_entries", "10", "--ring", "4M", "app.py"}) == ExitCode::kUsage);
}

TEST_CASE("option --hook takes a mechanism's name, from the command line or VZTRACE_HOOK") {
    CleanEnvironment clean;
    CHECK(parse({"app.py"}).trace.hook == vztrace::tracer::HookChoice::kAuto);
    CHECK(parse({"--hook", "frame", "app.py"}).trace.hook == vztrace::tracer::HookChoice::kFrame);
    CHECK(parse({"--hook=monitoring", "app.py"}).trace.hook ==
          vztrace::tracer::HookChoice::kMonitoring);
    setenv("VZTRACE_HOOK", "profile", 1);
    CHECK(parse({"app.py"}).trace.hook == vztrace::tracer::HookChoice::kProfile);
    CHECK(usage_code({"--hook", "fastest", "app.py"}) == ExitCode::kUsage);
}
