#include "launcher/command_line.hpp"

#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "embed/setup_error.hpp"
#include "support/process.hpp"

using vztrace::ExitCode;
using vztrace::SetupError;
using vztrace::launcher::Invocation;
using vztrace::launcher::parse_command_line;
using vztrace::launcher::parse_duration;
using vztrace::launcher::parse_size;
using vztrace::launcher::python_script_named;
using vztrace::testing::TempDir;
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

// The message of the usage error `args` give (empty when they parse).
std::string usage_message(Args args) {
    try {
        parse(std::move(args));
    } catch (const SetupError& error) {
        CHECK(error.code() == ExitCode::kUsage);
        return error.what();
    }
    return {};
}

// Every variable of an option, and the one that marks a child of a traced tree.
constexpr const char* kVariables[] = {"VZTRACE_OUTPUT",
                                      "VZTRACE_QUIET",
                                      "VZTRACE_COMPRESS",
                                      "VZTRACE_MAX_SIZE",
                                      "VZTRACE_RING",
                                      "VZTRACE_TRACER_ENTRIES",
                                      "VZTRACE_IGNORE_C_FUNCTION",
                                      "VZTRACE_INCLUDE_FILES",
                                      "VZTRACE_EXCLUDE_FILES",
                                      "VZTRACE_IGNORE_FROZEN",
                                      "VZTRACE_MAX_STACK_DEPTH",
                                      "VZTRACE_MIN_DURATION",
                                      "VZTRACE_NO_STARTUP",
                                      "VZTRACE_LOG_SPARSE",
                                      "VZTRACE_LOG_FUNC_ARGS",
                                      "VZTRACE_LOG_FUNC_RETVAL",
                                      "VZTRACE_LOG_EXCEPTION",
                                      "VZTRACE_LOG_GC",
                                      "VZTRACE_LOG_PRINT",
                                      "VZTRACE_LOG_AUDIT",
                                      "VZTRACE_LOG_ASYNC",
                                      "VZTRACE_IGNORE_MULTIPROCESS",
                                      "VZTRACE_PID_SUFFIX",
                                      "VZTRACE_OUTPUT_DIR",
                                      "VZTRACE_HOOK",
                                      "VZTRACE_MAX_MEMORY"};

// Clears the VZTRACE_* variables before and after one test.
struct CleanEnvironment {
    CleanEnvironment() { clear(); }
    ~CleanEnvironment() { clear(); }
    static void clear() {
        for (const char* name : kVariables) unsetenv(name);
        unsetenv("VZTRACE_ROOT_PID");
    }
};

// Runs one test in `dir` (where a pyproject.toml is looked for), then goes back.
struct WorkingDirectory {
    explicit WorkingDirectory(const std::filesystem::path& dir)
        : saved(std::filesystem::current_path()) {
        std::filesystem::create_directories(dir);
        std::filesystem::current_path(dir);
    }
    ~WorkingDirectory() { std::filesystem::current_path(saved); }
    std::filesystem::path saved;
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
    CHECK(parse({"-R", "-c", "pass"}).python_argv == Args{"-R", "-c", "pass"});
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

TEST_CASE("an option of vztrace's after python's options is named as vztrace's, not unknown") {
    // -q is python's (quiet), so `vztrace -q -o t.pftrace app.py` handed -o to python, and
    // vztrace called its own documented option unknown.
    CleanEnvironment env;
    const std::string expected = "is vztrace's but comes after python's options";
    CHECK(usage_message({"-q", "-o", "t.pftrace", "app.py"}) ==
          "option '-o' is vztrace's but comes after python's options, which end vztrace's: "
          "give vztrace's options first");
    CHECK(usage_message({"-u", "--quiet", "app.py"}).find(expected) != std::string::npos);
    CHECK(usage_message({"-u", "--max-size", "1G", "app.py"}).find(expected) != std::string::npos);
    CHECK(usage_message({"-u", "-Z", "app.py"}) == "unknown option '-Z' (see vztrace --help)");
    CHECK(usage_code({"-q", "-o", "t.pftrace", "app.py"}) == ExitCode::kUsage);
}

TEST_CASE("the options --help and --version are vztrace's own") {
    CleanEnvironment env;
    const auto help = parse({"--help"});
    CHECK(help.action == Invocation::Action::kHelp);
    CHECK(help.help.find("--ignore-c-function") != std::string::npos);
    CHECK(help.help.find("VZTRACE_OUTPUT") != std::string::npos);
    CHECK(help.help.find("74") != std::string::npos);
    for (const char* command : {"vztrace report", "vztrace diff", "vztrace export",
                                "vztrace combine", "pyproject.toml"}) {
        CHECK(help.help.find(command) != std::string::npos);
    }
    for (const char* variable : kVariables) {
        INFO(variable);
        CHECK(help.help.find(variable) != std::string::npos);
    }
    CHECK(parse({"--version"}).action == Invocation::Action::kVersion);
}

TEST_CASE("in a traced tree, --version, -h, --help and no program at all are python's") {
    CleanEnvironment env;
    setenv("VZTRACE_ROOT_PID", "1", 1);
    for (const char* option : {"--version", "--help", "-h"}) {
        const auto child = parse({option});
        CHECK(child.action == Invocation::Action::kRun);
        CHECK(child.python_argv == Args{option});
    }
    const auto from_stdin = parse({});
    CHECK(from_stdin.action == Invocation::Action::kRun);
    CHECK(from_stdin.python_argv.empty());
    CHECK(from_stdin.process_name == "-");
    CHECK(usage_code({"run"}) == ExitCode::kUsage);  // `run` asks for a program
    CHECK(parse({"-o", "inner.pftrace", "job.py"}).trace.output == "inner.pftrace");
    // `--` is python's there too: [sys.executable, "--", "-c", "x"] names a script "-c".
    CHECK(parse({"--", "-c", "x"}).python_argv == Args{"--", "-c", "x"});
}

TEST_CASE("in a traced tree, a script named run is python's, as a subcommand's name is") {
    // Before: [sys.executable, "run", "arg"] ran the script "arg" (python runs "run").
    CleanEnvironment clean;
    TempDir dir;
    WorkingDirectory cwd(dir.path());
    setenv("VZTRACE_ROOT_PID", "1", 1);
    CHECK_FALSE(python_script_named("run"));
    CHECK(parse({"run", "app.py"}).python_argv == Args{"app.py"});
    dir.write("run", "print(1)\n");
    dir.write("report", "print(1)\n");
    CHECK(python_script_named("report"));
    CHECK(parse({"run", "arg"}).python_argv == Args{"run", "arg"});
    CHECK(parse({"run", "arg"}).process_name == "run");
    unsetenv("VZTRACE_ROOT_PID");  // outside a tree they are vztrace's
    CHECK_FALSE(python_script_named("report"));
    CHECK(parse({"run", "arg"}).python_argv == Args{"arg"});
}

TEST_CASE("python's -t (ignored by python 3) is a python flag") {
    // Before: "unknown option '-t'", status 2, where python runs the program.
    CleanEnvironment env;
    CHECK(parse({"-t", "-c", "pass"}).python_argv == Args{"-t", "-c", "pass"});
    CHECK(parse({"-tt", "app.py"}).python_argv == Args{"-tt", "app.py"});
}

TEST_CASE("an output that is a directory or the script itself is refused before the run") {
    // Before: a directory was found out after the program had run (status 74), and
    // `-o app.json app.json` replaced the program with its trace.
    CleanEnvironment clean;
    TempDir dir;
    WorkingDirectory cwd(dir.path());
    std::filesystem::create_directory(dir.file("out.json"));
    CHECK(usage_message({"-o", "out.json", "app.py"}) ==
          "--output: 'out.json' is a directory: name the trace file");
    dir.write("app.json", "print(1)\n");
    CHECK(usage_message({"-o", "app.json", "app.json"}) ==
          "the trace file 'app.json' is the script 'app.json': it would be replaced");
    CHECK(usage_message({"-o", dir.file("app.json"), "run", "./app.json"}) ==
          "the trace file '" + dir.file("app.json") +
              "' is the script './app.json': it would "
              "be replaced");
    CHECK(usage_message({"-o", "other.json", "app.json"}).empty());
    CHECK(usage_message({"--pid-suffix", "-o", "app.json", "app.json"}).empty());
}

TEST_CASE("option --log-audit= with nothing after the = is a usage error") {
    // Before: it recorded every audit event, as --log-audit alone does.
    CleanEnvironment clean;
    CHECK(usage_message({"--log-audit=", "app.py"}) == "--log-audit: the value is empty");
    CHECK(usage_message({"--log_audit=", "app.py"}) == "--log-audit: the value is empty");
    CHECK(parse({"--log-audit", "app.py"}).trace.log_audit);
    CHECK(parse({"--log-audit", "app.py"}).trace.log_audit_events.empty());
    CHECK(parse({"--log-audit=open", "app.py"}).trace.log_audit_events == Args{"open"});
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

TEST_CASE("options' numbers are decimal: digits with at most one point") {
    using vztrace::launcher::decimal_length;
    CHECK(decimal_length("512M") == 3);
    CHECK(decimal_length("0.5ms") == 3);
    CHECK(decimal_length("2.") == 2);
    CHECK(decimal_length(".5") == 2);
    CHECK(decimal_length("1.2.3") == 3);  // the second point starts what follows
    CHECK(decimal_length(".") == 0);
    CHECK(decimal_length("") == 0);
    CHECK(decimal_length(" 10") == 0);
    CHECK(decimal_length("0x10") == 1);  // "0", then "x10" as a unit nobody knows
    CHECK(decimal_length("inf") == 0);
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

TEST_CASE("VizTracer's spellings of the options parse as the dashed ones") {
    CleanEnvironment clean;
    CHECK(parse({"--output_file", "x.json", "app.py"}).trace.output == "x.json");
    CHECK(parse({"--ignore_c_function", "app.py"}).trace.ignore_c_function);
    CHECK(parse({"--max_stack_depth", "3", "app.py"}).trace.max_stack_depth == 3);
    CHECK(parse({"--max-stack-depth=3", "app.py"}).trace.max_stack_depth == 3);
    CHECK(parse({"--log_audit", "app.py"}).trace.log_audit);
    CHECK(parse({"--include_files", "/src", "app.py"}).trace.include_files ==
          parse({"--include-files", "/src", "app.py"}).trace.include_files);
    CHECK(parse({"--min_duration", "5", "app.py"}).trace.min_duration_ns == 5000);
    const auto viztracer = parse({"--run", "app.py", "-o", "x"});
    CHECK(viztracer.python_argv == Args{"app.py", "-o", "x"});
    CHECK(viztracer.python_argv == parse({"run", "app.py", "-o", "x"}).python_argv);
}

TEST_CASE("option --log-audit alone records every audit event, with events only those") {
    CleanEnvironment clean;
    const auto all = parse({"--log-audit", "app.py"});
    CHECK(all.trace.log_audit);
    CHECK(all.trace.log_audit_events.empty());
    CHECK(all.python_argv == Args{"app.py"});
    const auto some = parse({"--log-audit=open,exec", "app.py"});
    CHECK(some.trace.log_audit);
    CHECK(some.trace.log_audit_events == Args{"open", "exec"});
    CHECK_FALSE(parse({"app.py"}).trace.log_audit);
    setenv("VZTRACE_LOG_AUDIT", "1", 1);
    CHECK(parse({"app.py"}).trace.log_audit);
    CHECK(parse({"app.py"}).trace.log_audit_events.empty());
}

TEST_CASE("option --log-audit given more than once takes its values in order") {
    // Before (hunt AF): "--log-audit=open --log-audit" recorded open alone, and
    // "--log-audit=open --log-audit=0" took 0 for an event's name and stayed on.
    CleanEnvironment clean;
    const auto every = parse({"--log-audit=open", "--log-audit", "app.py"});
    CHECK(every.trace.log_audit);
    CHECK(every.trace.log_audit_events.empty());
    CHECK_FALSE(parse({"--log-audit=open", "--log-audit=0", "app.py"}).trace.log_audit);
    CHECK_FALSE(parse({"--log-audit=open", "--log-audit=off", "app.py"}).trace.log_audit);
    const auto again = parse({"--log-audit=open", "--log-audit=no", "--log-audit=exec", "app.py"});
    CHECK(again.trace.log_audit);
    CHECK(again.trace.log_audit_events == Args{"exec"});
    const auto both = parse({"--log-audit=open", "--log-audit=exec", "app.py"});
    CHECK(both.trace.log_audit_events == Args{"open", "exec"});
    setenv("VZTRACE_LOG_AUDIT", "0", 1);
    CHECK_FALSE(parse({"app.py"}).trace.log_audit);
}

TEST_CASE("durations read with units, a bare number in microseconds as VizTracer's") {
    CHECK(parse_duration("10us") == 10'000);
    CHECK(parse_duration("10") == 10'000);
    CHECK(parse_duration("0.5ms") == 500'000);
    CHECK(parse_duration("2s") == 2'000'000'000);
    CHECK(parse_duration("300ns") == 300);
    CHECK(parse_duration("10US") == 10'000);  // any case, as sizes' units
    CHECK(parse_duration("2S") == 2'000'000'000);
    CHECK_THROWS_AS(parse_duration("10 parsecs"), SetupError);
    CHECK_THROWS_AS(parse_duration("-1us"), SetupError);
    // Decimal only: hex read as 16 us, a leading blank and an exponent were taken.
    CHECK_THROWS_AS(parse_duration("0x10us"), SetupError);
    CHECK_THROWS_AS(parse_duration(" 10us"), SetupError);
    CHECK_THROWS_AS(parse_duration("1e3us"), SetupError);
    CHECK_THROWS_AS(parse_duration("."), SetupError);
    CHECK_THROWS_AS(parse_duration("1.2.3ms"), SetupError);
    CHECK(parse_duration(".5ms") == 500'000);
    CleanEnvironment clean;
    CHECK(parse({"--min-duration", "1ms", "app.py"}).trace.min_duration_ns == 1'000'000);
    CHECK(usage_message({"--min-duration", "soon", "app.py"}) ==
          "--min-duration: invalid duration 'soon' (expected e.g. 10us, 0.5ms, 2s)");
}

TEST_CASE(
    "the tool.vztrace table of the nearest pyproject.toml sets options, paths from its directory") {
    CleanEnvironment clean;
    TempDir dir;
    dir.write("pyproject.toml", R"([project]
name = "app"

[tool.vztrace]
output_file = "traces/from_config.json"
ignore_c_function = true
include_files = ["src", "lib/", "/abs", "*/glob/*"]
exclude-files = "vendor:third_party"
max_stack_depth = 10
min_duration = "10us"
log_audit = ["open", "exec"]
log-gc = true
hook = "frame"
max_memory = "64M"
output_dir = "per-process"
)");
    WorkingDirectory cwd(dir.file("a/b"));  // found upward
    const auto inv = parse({"app.py"});
    const std::string root = dir.path();
    CHECK(inv.trace.output == root + "/traces/from_config.json");
    CHECK(inv.trace.ignore_c_function);
    CHECK(inv.trace.include_files == Args{root + "/src", root + "/lib/", "/abs", "*/glob/*"});
    CHECK(inv.trace.exclude_files == Args{root + "/vendor", root + "/third_party"});
    CHECK(inv.trace.max_stack_depth == 10);
    CHECK(inv.trace.min_duration_ns == 10'000);
    CHECK(inv.trace.log_audit);
    CHECK(inv.trace.log_audit_events == Args{"open", "exec"});
    CHECK(inv.trace.log_gc);
    CHECK_FALSE(inv.trace.log_print);
    CHECK(inv.trace.hook == vztrace::tracer::HookChoice::kFrame);
    CHECK(inv.trace.max_memory == 64ULL << 20);
    CHECK(inv.trace.output_dir == root + "/per-process");
    // The command line's relative paths stay the working directory's.
    CHECK(parse({"--include-files", "src", "app.py"}).trace.include_files ==
          Args{root + "/a/b/src"});
}

TEST_CASE("config values: numbers, true for every audit event, false leaves a flag off") {
    CleanEnvironment clean;
    TempDir dir;
    dir.write("pyproject.toml",
              "[tool.vztrace]\nmin_duration = 0.5\nmax_memory = 2097152\nlog_audit = true\n"
              "quiet = false\ntracer_entries = 10\n");
    WorkingDirectory cwd(dir.path());
    const auto inv = parse({"app.py"});
    CHECK(inv.trace.min_duration_ns == 500);
    CHECK(inv.trace.max_memory == 2ULL << 20);
    CHECK(inv.trace.log_audit);
    CHECK(inv.trace.log_audit_events.empty());
    CHECK_FALSE(inv.trace.quiet);
    CHECK(inv.trace.ring == (1 + 2) * 4096 * 16);
    dir.write("pyproject.toml", "[tool.vztrace]\nlog_audit = false\n");
    CHECK_FALSE(parse({"app.py"}).trace.log_audit);
}

TEST_CASE(
    "the nearest pyproject.toml is the project's, whether or not it has a tool.vztrace table") {
    CleanEnvironment clean;
    TempDir dir;
    dir.write("pyproject.toml", "[tool.vztrace]\nquiet = true\n");
    dir.write("inner/pyproject.toml", "[project]\nname = \"inner\"\n");
    {
        WorkingDirectory cwd(dir.file("inner/pkg"));
        CHECK_FALSE(parse({"app.py"}).trace.quiet);
    }
    WorkingDirectory cwd(dir.file("other"));
    CHECK(parse({"app.py"}).trace.quiet);
}

TEST_CASE("option --config names the file and --no-config ignores any") {
    CleanEnvironment clean;
    TempDir dir;
    dir.write("pyproject.toml", "[tool.vztrace]\nquiet = true\n");
    dir.write("conf/vztrace.toml", "output = \"t.json\"\nlog_print = true\n");
    dir.write("conf/pyproject.toml", "[tool.vztrace]\nlog_gc = true\n");
    dir.write("conf/no-table/pyproject.toml", "[project]\nname = \"x\"\n");
    WorkingDirectory cwd(dir.path());
    // A plain TOML file: its top-level keys are the options.
    const auto plain = parse({"--config", "conf/vztrace.toml", "app.py"});
    CHECK(plain.trace.output == dir.file("conf/t.json"));
    CHECK(plain.trace.log_print);
    CHECK_FALSE(plain.trace.quiet);  // instead of the nearest pyproject.toml, not beside it
    const auto pyproject = parse({"--config=conf/pyproject.toml", "app.py"});
    CHECK(pyproject.trace.log_gc);
    CHECK_FALSE(pyproject.trace.quiet);
    CHECK(usage_message({"--config", "conf/no-table/pyproject.toml", "app.py"}) ==
          dir.file("conf/no-table/pyproject.toml") + ": no [tool.vztrace] table");
    CHECK(usage_message({"--config", "missing.toml", "app.py"}) ==
          "cannot read config file '" + dir.file("missing.toml") + "': No such file or directory");
    CHECK_FALSE(parse({"--no-config", "app.py"}).trace.quiet);
    CHECK(parse({"app.py"}).trace.quiet);
    CHECK(usage_code({"--no-config", "--config", "conf/vztrace.toml", "app.py"}) ==
          ExitCode::kUsage);
}

TEST_CASE(
    "a config file, then VZTRACE_* variables, then the command line: each wins over the "
    "one before") {
    CleanEnvironment clean;
    TempDir dir;
    dir.write("pyproject.toml", R"([tool.vztrace]
output = "file.json"
max_memory = "16M"
hook = "frame"
quiet = true
ignore_c_function = false
ring = "8M"
)");
    WorkingDirectory cwd(dir.path());
    const auto file_only = parse({"app.py"});
    CHECK(file_only.trace.output == dir.file("file.json"));
    CHECK(file_only.trace.max_memory == 16ULL << 20);
    CHECK(file_only.trace.ring == 8ULL << 20);

    setenv("VZTRACE_OUTPUT", "env.json", 1);
    setenv("VZTRACE_MAX_MEMORY", "64M", 1);
    setenv("VZTRACE_IGNORE_C_FUNCTION", "1", 1);
    setenv("VZTRACE_TRACER_ENTRIES", "10", 1);
    const auto env = parse({"app.py"});
    CHECK(env.trace.output == "env.json");
    CHECK(env.trace.max_memory == 64ULL << 20);
    CHECK(env.trace.ignore_c_function);
    CHECK(env.trace.hook == vztrace::tracer::HookChoice::kFrame);  // the file's, not overridden
    CHECK(env.trace.quiet);
    CHECK(env.trace.ring == (1 + 2) * 4096 * 16);  // VZTRACE_TRACER_ENTRIES beats the file's ring

    const auto cli = parse(
        {"-o", "cli.json", "--max-memory", "128M", "--hook", "profile", "--ring", "4M", "app.py"});
    CHECK(cli.trace.output == "cli.json");
    CHECK(cli.trace.max_memory == 128ULL << 20);
    CHECK(cli.trace.hook == vztrace::tracer::HookChoice::kProfile);
    CHECK(cli.trace.ring == 4ULL << 20);
    CHECK(cli.trace.quiet);
}

TEST_CASE("a child of a traced tree reads no config file: it has the root's settings") {
    CleanEnvironment clean;
    TempDir dir;
    dir.write("pyproject.toml", "[tool.vztrace]\nquiet = true\nnot_an_option = 1\n");
    WorkingDirectory cwd(dir.path());
    CHECK(usage_code({"app.py"}) == ExitCode::kUsage);
    setenv("VZTRACE_ROOT_PID", "1", 1);
    CHECK_FALSE(parse({"app.py"}).trace.quiet);
    setenv("VZTRACE_QUIET", "1", 1);
    CHECK(parse({"app.py"}).trace.quiet);
}

TEST_CASE("a bad key, value or TOML in a config file is one line naming the file and key") {
    CleanEnvironment clean;
    TempDir dir;
    WorkingDirectory cwd(dir.path());
    const std::string file = dir.file("pyproject.toml");
    const auto message = [&](const std::string& table) {
        dir.write("pyproject.toml", "[project]\nname = \"x\"\n[tool.vztrace]\n" + table);
        return usage_message({"app.py"});
    };
    // {the lines of [tool.vztrace], the message after "FILE:"}
    const std::pair<std::string, std::string> cases[] = {
        {"max_memory = \"lots\"",
         "4: [tool.vztrace] max_memory: invalid size 'lots' (expected e.g. 512M or 2G)"},
        {"quiet = true\nverbose = true",
         "5: [tool.vztrace] verbose: no such option (see vztrace --help)"},
        {"quiet = \"yes\"", "4: [tool.vztrace] quiet: expected true or false"},
        {"hook = true", "4: [tool.vztrace] hook: expected a value, not true or false"},
        {"output = [\"a.json\", \"b.json\"]",
         "4: [tool.vztrace] output: expected one value, not an array"},
        {"include_files = [\"src\", 3]",
         "4: [tool.vztrace] include_files: expected an array of strings"},
        // Text options took numbers as names: a path "5", a directory "7", an audit event.
        {"include_files = 5", "4: [tool.vztrace] include_files: expected a string, not a number"},
        {"include_files = 1.5", "4: [tool.vztrace] include_files: expected a string, not a number"},
        {"output_dir = 7", "4: [tool.vztrace] output_dir: expected a string, not a number"},
        {"output = 7", "4: [tool.vztrace] output: expected a string, not a number"},
        {"log_audit = 5", "4: [tool.vztrace] log_audit: expected a string, not a number"},
        {"hook = 1", "4: [tool.vztrace] hook: expected a string, not a number"},
        // One value, given as an array of numbers: the array is the mistake.
        {"max_memory = [1]", "4: [tool.vztrace] max_memory: expected one value, not an array"},
        {"max_stack_depth = 0",
         "4: [tool.vztrace] max_stack_depth: invalid depth '0' (expected 1 or more)"},
        {"min_duration = \"soon\"",
         "4: [tool.vztrace] min_duration: invalid duration 'soon' (expected e.g. 10us, 0.5ms, 2s)"},
        {"log = { gc = true }",
         "4: [tool.vztrace] log: expected a boolean, a number, a string or an array of strings"},
        {"help = true", "4: [tool.vztrace] help: not allowed in a config file"},
        {"version = true", "4: [tool.vztrace] version: not allowed in a config file"},
        {"config = \"x.toml\"", "4: [tool.vztrace] config: not allowed in a config file"},
        {"no_config = true", "4: [tool.vztrace] no_config: not allowed in a config file"},
    };
    for (const auto& [table, expected] : cases) {
        CHECK(message(table + "\n") == file + ":" + expected);
    }
    CHECK(message("output = \"trace.txt\"\n")
              .starts_with(file + ":4: [tool.vztrace] output: cannot tell the trace format of '" +
                           dir.file("trace.txt") + "'"));
    CHECK(message("output = \"a.json\"\noutput_file = \"b.json\"\n") ==
          file + ":5: [tool.vztrace] output_file: sets the same option as " + file +
              ":4: [tool.vztrace] output");
    // The later line is the repeat, whatever the keys' order (the table sorts them).
    CHECK(message("max_stack_depth = 3\nmax-stack-depth = 4\n") ==
          file + ":5: [tool.vztrace] max-stack-depth: sets the same option as " + file +
              ":4: [tool.vztrace] max_stack_depth");
    // Checked even where the command line overrides it.
    dir.write("pyproject.toml", "[tool.vztrace]\nmax_memory = \"lots\"\n");
    CHECK(usage_code({"--max-memory", "64M", "app.py"}) == ExitCode::kUsage);
    // TOML that does not parse: the file, line and column.
    dir.write("pyproject.toml", "[tool.vztrace]\nquiet = yes\n");
    const std::string syntax = usage_message({"app.py"});
    CHECK(syntax.starts_with(file + ":2:9: invalid TOML: "));
    CHECK(syntax.find('\n') == std::string::npos);
    // Not for --help, which reads no config file.
    CHECK(parse({"--help"}).action == Invocation::Action::kHelp);
}

// Values that used to be taken silently: a size past 64 bits or infinite became 0 (a ring
// silently off), an empty value left the option unset, VZTRACE_LOG_AUDIT=0 turned audit
// events on, and --ring with --max-size kept the ring's oldest events instead of its newest.
TEST_CASE("sizes are digits and a unit, within range; no inf, exponents, hex or blanks") {
    for (const char* text :
         {"inf", "1e30", "1E9", "0x100000", " 5M", "1.2.3M", "2000T", ".M", "nan", "-5M", "5 M"}) {
        INFO(text);
        CHECK_THROWS_AS(parse_size(text), SetupError);
    }
    CHECK(parse_size("1024T") == 1ULL << 50);
    CHECK(parse_size(".5G") == 1ULL << 29);
    CleanEnvironment clean;
    CHECK(usage_message({"--ring", "1e30", "app.py"}) ==
          "--ring: invalid size '1e30' (expected e.g. 512M or 2G)");
    CHECK(usage_message({"--max-memory", "9999T", "app.py"}) ==
          "--max-memory: size '9999T' is too large (at most 1024T)");
}

TEST_CASE("an empty value is an error where it is given; a variable set empty is unset") {
    CleanEnvironment clean;
    CHECK(usage_message({"--include-files", "", "app.py"}) ==
          "--include-files: the value is empty");
    // A list of nothing but separators: the next option was taken for a path (-o ignored,
    // result.pftrace replaced).
    CHECK(usage_message({"--include-files", ":", "-o", "want.json", "app.py"}) ==
          "--include-files: the value is empty");
    CHECK(usage_message({"--exclude-files=::", "--quiet", "app.py"}) ==
          "--exclude-files: the value is empty");
    CHECK(usage_message({"--log-audit=,", "app.py"}) == "--log-audit: the value is empty");
    CHECK(parse({"--log-audit", "--include-files", "a:", "app.py"}).trace.include_files.size() ==
          1);
    CHECK(usage_message({"--max-size", "", "app.py"}) == "--max-size: the value is empty");
    CHECK(usage_message({"--hook", "", "app.py"}) == "--hook: the value is empty");
    CHECK(usage_message({"-o", "", "app.py"}) == "--output: the output file name is empty");
    setenv("VZTRACE_INCLUDE_FILES", "", 1);
    setenv("VZTRACE_RING", "", 1);
    const auto unset = parse({"app.py"});
    CHECK(unset.trace.include_files.empty());
    CHECK(unset.trace.ring == 0);
    // A variable of nothing but separators was taken for no filter at all (every file
    // traced), where the same value on the command line is an error.
    setenv("VZTRACE_INCLUDE_FILES", ":", 1);
    CHECK(usage_message({"app.py"}) == "VZTRACE_INCLUDE_FILES: the value is empty");
    CHECK(parse({"--include-files", "src", "app.py"}).trace.include_files.size() == 1);
    CleanEnvironment::clear();
    setenv("VZTRACE_EXCLUDE_FILES", "::", 1);
    CHECK(usage_message({"app.py"}) == "VZTRACE_EXCLUDE_FILES: the value is empty");
    CleanEnvironment::clear();
    setenv("VZTRACE_LOG_AUDIT", ",", 1);
    CHECK(usage_message({"app.py"}) == "VZTRACE_LOG_AUDIT: the value is empty");
    CleanEnvironment::clear();
    TempDir dir;
    dir.write("pyproject.toml", "[tool.vztrace]\ninclude_files = \"\"\n");
    WorkingDirectory cwd(dir.path());
    CHECK(usage_message({"app.py"}) ==
          dir.file("pyproject.toml") + ":2: [tool.vztrace] include_files: the value is empty");
    dir.write("pyproject.toml", "[tool.vztrace]\ninclude_files = []\n");  // none listed
    CHECK(parse({"app.py"}).trace.include_files.empty());
}

TEST_CASE("an empty value among others, or after '=', is an error, not the next option") {
    // Found by hunt AN. `--output-dir=` took the next option for its value (a directory
    // named --quiet made, --quiet not applied), `--include-files=` took --ignore-c-function
    // for a path (every function left out), and an empty value given beside others was
    // dropped without a word.
    CleanEnvironment clean;
    CHECK(usage_message({"--output-dir=", "--quiet", "app.py"}) ==
          "--output-dir: the value is empty");
    CHECK(usage_message({"--include-files=", "--ignore-c-function", "app.py"}) ==
          "--include-files: the value is empty");
    CHECK(usage_message({"--min-duration=", "--quiet", "app.py"}) ==
          "--min-duration: the value is empty");
    CHECK(usage_message({"--hook=", "-o", "x.json", "app.py"}) == "--hook: the value is empty");
    CHECK(usage_message({"--output=", "--quiet", "app.py"}) ==
          "--output: the output file name is empty");
    CHECK(usage_message({"--include-files", "src", "--include-files", "", "app.py"}) ==
          "--include-files: the value is empty");
    CHECK(usage_message({"--exclude-files=src", "--exclude-files=", "app.py"}) ==
          "--exclude-files: the value is empty");
    // In a config file's list: include_files = ["src", ""] dropped the "", and
    // log_audit = ["open", ""] recorded every audit event.
    TempDir dir;
    WorkingDirectory cwd(dir.path());
    dir.write("pyproject.toml", "[tool.vztrace]\ninclude_files = [\"src\", \"\"]\n");
    CHECK(usage_message({"app.py"}) ==
          dir.file("pyproject.toml") + ":2: [tool.vztrace] include_files: the value is empty");
    dir.write("pyproject.toml", "[tool.vztrace]\nlog_audit = [\"open\", \"\"]\n");
    CHECK(usage_message({"app.py"}) ==
          dir.file("pyproject.toml") + ":2: [tool.vztrace] log_audit: the value is empty");
    dir.write("pyproject.toml", "[tool.vztrace]\nlog_audit = [\"open\"]\n");
    CHECK(parse({"app.py"}).trace.log_audit_events == Args{"open"});
}

TEST_CASE("option --log-audit is off for 0, false, no and off, as every flag's variable") {
    CleanEnvironment clean;
    for (const char* off : {"0", "false", "No", "OFF"}) {
        INFO(off);
        setenv("VZTRACE_LOG_AUDIT", off, 1);
        CHECK_FALSE(parse({"app.py"}).trace.log_audit);
        CHECK_FALSE(parse({std::string("--log-audit=") + off, "app.py"}).trace.log_audit);
    }
    for (const char* on : {"1", "true", "yes", "On"}) {
        INFO(on);
        setenv("VZTRACE_LOG_AUDIT", on, 1);
        CHECK(parse({"app.py"}).trace.log_audit);
        CHECK(parse({"app.py"}).trace.log_audit_events.empty());
    }
    setenv("VZTRACE_LOG_AUDIT", "open,exec", 1);
    CHECK(parse({"app.py"}).trace.log_audit_events == Args{"open", "exec"});
}

TEST_CASE("a ring and --max-size, and --compress with JSON output, are refused in one line") {
    CleanEnvironment clean;
    const std::string ring_cap = usage_message({"--ring", "4M", "--max-size", "1M", "app.py"});
    CHECK(ring_cap.rfind("--ring and --max-size do not go together: ", 0) == 0);
    setenv("VZTRACE_MAX_SIZE", "1M", 1);
    CHECK(usage_message({"--tracer_entries", "1000", "app.py"})
              .rfind("--tracer_entries and VZTRACE_MAX_SIZE do not go together", 0) == 0);
    CleanEnvironment::clear();
    CHECK(usage_message({"--compress", "-o", "t.json", "app.py"}) ==
          "--compress compresses Perfetto output, and 't.json' is JSON (a name ending .json.gz "
          "is gzipped)");
    CHECK(usage_code({"--compress", "-o", "t.json.gz", "app.py"}) == ExitCode::kUsage);
    CHECK(parse({"--compress", "-o", "t.pftrace", "app.py"}).trace.compress);
}

TEST_CASE(
    "option --hook frame with a --log-* option it cannot record is refused, naming where each is") {
    // Found by the tracer at start-up, the error named the options, not the config file's
    // lines that set them.
    CleanEnvironment clean;
    CHECK(usage_message({"--hook", "frame", "--log-func-args", "app.py"})
              .rfind("--hook and --log-func-args do not go together: ", 0) == 0);
    setenv("VZTRACE_LOG_EXCEPTION", "1", 1);
    CHECK(usage_message({"--hook=frame", "app.py"})
              .rfind("--hook and VZTRACE_LOG_EXCEPTION do not go together: ", 0) == 0);
    CleanEnvironment::clear();
    TempDir dir;
    WorkingDirectory in(dir.path());
    dir.write("pyproject.toml", "[tool.vztrace]\nhook = \"frame\"\nlog_func_retval = true\n");
    CHECK(usage_message({"app.py"})
              .rfind(dir.file("pyproject.toml") + ":2: [tool.vztrace] hook and " +
                         dir.file("pyproject.toml") +
                         ":3: [tool.vztrace] log_func_retval do not go "
                         "together: ",
                     0) == 0);
    dir.write("pyproject.toml", "[tool.vztrace]\nhook = \"frame\"\n");
    CHECK(usage_message({"--log-func-args", "app.py"})
              .rfind(dir.file("pyproject.toml") +
                         ":2: [tool.vztrace] hook and --log-func-args do not go together: ",
                     0) == 0);
    CHECK(parse({"--hook", "auto", "--log-func-args", "app.py"}).trace.log_func_args);
}

TEST_CASE("an option given twice takes its last value; a list takes every value") {
    CleanEnvironment clean;
    CHECK(parse({"-o", "a.pftrace", "-o", "b.pftrace", "app.py"}).trace.output == "b.pftrace");
    CHECK(
        parse({"--max-stack-depth", "3", "--max-stack-depth=4", "app.py"}).trace.max_stack_depth ==
        4);
    const auto files = parse({"--include-files", "/a", "--include-files", "/b:/c", "app.py"});
    CHECK(files.trace.include_files == Args{"/a", "/b", "/c"});
    CHECK(parse({"--log-audit=open", "--log-audit=exec", "app.py"}).trace.log_audit_events ==
          Args{"open", "exec"});
}

TEST_CASE("a flag's variable that is neither true nor false is an error naming the variable") {
    CleanEnvironment clean;
    setenv("VZTRACE_QUIET", "bogus", 1);
    CHECK(usage_message({"app.py"}) ==
          "VZTRACE_QUIET: 'bogus' is neither true nor false (1, true, yes, on; 0, false, no, off)");
    for (const char* on : {"1", "TRUE", "yes", "On"}) {
        setenv("VZTRACE_QUIET", on, 1);
        INFO(on);
        CHECK(parse({"app.py"}).trace.quiet);
    }
    for (const char* off : {"0", "false", "NO", "off"}) {
        setenv("VZTRACE_QUIET", off, 1);
        INFO(off);
        CHECK_FALSE(parse({"app.py"}).trace.quiet);
    }
}
