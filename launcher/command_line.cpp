#include "launcher/command_line.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <string_view>

#include "embed/setup_error.hpp"

namespace vztrace::launcher {
namespace {

constexpr std::string_view kFooter = R"(Usage forms:
  vztrace [OPTIONS] run SCRIPT [ARGS...]      (also: vztrace run [OPTIONS] SCRIPT ...)
  vztrace [OPTIONS] run -m MODULE [ARGS...]
  vztrace [OPTIONS] -c CODE [ARGS...]
  vztrace [PYTHON-OPTIONS] SCRIPT [ARGS...]   (#!/usr/bin/env vztrace, sys.executable)

After the run (each has its own --help):
  vztrace report TRACE               where the time went, by function
  vztrace diff BASE NEW              what changed; --fail-over, --fail-on-new-calls for CI
  vztrace export TRACE -o OUT        .pftrace, .json(.gz), .speedscope.json, .folded, .pstats
  vztrace combine A B ... -o OUT     traces of separate runs or machines as one

vztrace's options come first; everything from the target on (python's own flags such as
-u -B -E -s -S -I -P -O -X -W included) is handed to python untouched. Use `--` to end
vztrace's options explicitly.

Environment: every option has a variable that applies when the option is not given:
  VZTRACE_OUTPUT, VZTRACE_QUIET, VZTRACE_IGNORE_C_FUNCTION, VZTRACE_HOOK,
  VZTRACE_MAX_MEMORY, VZTRACE_MAX_SIZE, VZTRACE_COMPRESS, VZTRACE_RING,
  VZTRACE_TRACER_ENTRIES, VZTRACE_IGNORE_MULTIPROCESS, VZTRACE_PID_SUFFIX,
  VZTRACE_OUTPUT_DIR.

Formats, by the output's extension: .pftrace or .perfetto-trace (Perfetto's protobuf,
the default: opens in ui.perfetto.dev and trace_processor), .json and .json.gz (Chrome
Trace Event JSON: chrome://tracing, vizviewer). Events stream to the file while the
program runs; if the disk is slower than the program, the program waits: nothing is
dropped unless --max-size says so.

Child processes (fork, multiprocessing, sys.executable) are traced into the root's
trace: one process per pid, on one time axis. A child that is killed loses only its own
events; the root waits at most 10 s at its end for children still running.

Exit status: the traced program's own status, unchanged. vztrace's own failures:
  2   bad command line (unknown option, no program)
  3   the interpreter could not be set up (e.g. a virtualenv of another Python version)
  74  the program exited 0 but the trace could not be written)";

// Python's command-line flags (Modules/main.c usage): those that stand alone, and those
// that take a value, attached or as the next argument.
constexpr std::string_view kPythonFlags = "bBdEhiIOPqsSuvVx?";
constexpr std::string_view kPythonFlagsWithValue = "cmWX";
constexpr std::array<std::string_view, 6> kPythonLongOptions = {
    "--help",     "--version",       "--check-hash-based-pycs",
    "--help-env", "--help-xoptions", "--help-all"};

[[noreturn]] void usage_error(const std::string& message) {
    throw SetupError(ExitCode::kUsage, message);
}

// Checks python's own leading options so that a typo gets one clear line from vztrace
// rather than python's multi-line usage text. Returns the target as the trace names the
// process: the script, "-m module", "-c" or "-" (standard input).
std::string check_python_options(const std::vector<std::string>& argv) {
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& arg = argv[i];
        if (arg.size() < 2 || arg[0] != '-') return arg;  // the script, or "-" for standard input
        if (arg == "--") return i + 1 < argv.size() ? argv[i + 1] : "-";
        if (arg[1] == '-') {
            const std::string_view name = std::string_view(arg).substr(0, arg.find('='));
            if (std::find(kPythonLongOptions.begin(), kPythonLongOptions.end(), name) ==
                kPythonLongOptions.end()) {
                usage_error(fmt::format("unknown option '{}' (see vztrace --help)", name));
            }
            if (name == "--check-hash-based-pycs" && arg.find('=') == std::string::npos) ++i;
            continue;
        }
        for (std::size_t k = 1; k < arg.size(); ++k) {
            const char flag = arg[k];
            if (kPythonFlagsWithValue.find(flag) != std::string_view::npos) {
                const bool attached = k + 1 < arg.size();
                if (!attached && i + 1 >= argv.size()) {
                    usage_error(fmt::format("option '-{}' needs an argument", flag));
                }
                if (flag == 'c') {  // the target: the rest is its argv
                    std::string code = attached ? arg.substr(k + 1) : argv[i + 1];
                    code = code.substr(0, std::min(code.find('\n'), std::size_t{60}));
                    return code.empty() ? "-c" : "-c " + code;
                }
                if (flag == 'm') return "-m " + (attached ? arg.substr(k + 1) : argv[i + 1]);
                if (!attached) ++i;
                break;
            }
            if (kPythonFlags.find(flag) == std::string_view::npos) {
                usage_error(fmt::format("unknown option '-{}' (see vztrace --help)", flag));
            }
        }
    }
    return "-";  // only options: python reads the program from standard input
}

struct CliDefinition {
    CLI::App app{"vztrace: trace every call of a Python program into a timeline", "vztrace"};
    std::string max_memory_text;
    std::string max_size_text;
    std::string ring_text;
    std::string hook_text;
    std::string tracer_entries_text;
    bool version = false;

    explicit CliDefinition(tracer::TraceSettings& trace) {
        app.set_help_flag("-h,--help", "Print this help and exit");
        app.add_flag("--version", version, "Print vztrace's and the embedded Python's versions");
        app.add_option("-o,--output", trace.output,
                       "Trace file to write (default: result.pftrace); the format follows the "
                       "extension; an existing file is replaced only once the new trace is "
                       "complete")
            ->envname("VZTRACE_OUTPUT")
            ->type_name("FILE");
        app.add_flag("--quiet", trace.quiet, "Print nothing but errors")->envname("VZTRACE_QUIET");
        app.add_flag("--ignore-c-function", trace.ignore_c_function,
                     "Record Python functions only, not calls of C functions (builtins)")
            ->envname("VZTRACE_IGNORE_C_FUNCTION");
        app.add_option("--hook", hook_text,
                       "How Python calls are recorded: auto (default: the frame-evaluation "
                       "hook where it is exact, else sys.monitoring on 3.12+ or the profile "
                       "hook on 3.11), frame, monitoring (3.12+) or profile (3.11)")
            ->envname("VZTRACE_HOOK")
            ->type_name("MECHANISM");
        app.add_flag("--ignore-multiprocess", trace.ignore_multiprocess,
                     "Trace the root process only, not its children")
            ->envname("VZTRACE_IGNORE_MULTIPROCESS");
        app.add_flag("--pid-suffix", trace.pid_suffix,
                     "Each process writes its own file, named with its pid "
                     "(result_1234.json), instead of one trace from the root")
            ->envname("VZTRACE_PID_SUFFIX");
        app.add_option("--output-dir", trace.output_dir,
                       "Each process writes its own file, named with its pid, in DIR")
            ->envname("VZTRACE_OUTPUT_DIR")
            ->type_name("DIR");
        app.add_option("--max-memory", max_memory_text,
                       "Memory for event records not yet written (e.g. 16M, 1G; default 32M); "
                       "when it is full the program waits for the writer, nothing is lost")
            ->envname("VZTRACE_MAX_MEMORY")
            ->type_name("SIZE");
        app.add_option("--max-size", max_size_text,
                       "Largest trace file to write (e.g. 500M, 2G); past it recording stops and "
                       "the trace and stderr say how many events were not recorded")
            ->envname("VZTRACE_MAX_SIZE")
            ->type_name("SIZE");
        app.add_option("--ring", ring_text,
                       "Flight recorder: keep only the newest SIZE of records (e.g. 64M) in "
                       "memory and write them at the end (exit, SIGTERM, SIGHUP); calls open at "
                       "the cut start there, flagged")
            ->envname("VZTRACE_RING")
            ->type_name("SIZE");
        app.add_option("--tracer_entries,--tracer-entries", tracer_entries_text,
                       "VizTracer's ring, by calls: keep (at least) the newest N calls, as "
                       "--ring does by size")
            ->envname("VZTRACE_TRACER_ENTRIES")
            ->type_name("N");
        app.add_flag("--compress", trace.compress,
                     "Perfetto output in compressed packets (zlib; every Perfetto reader "
                     "opens them): a quarter to a tenth of the size")
            ->envname("VZTRACE_COMPRESS");
        app.footer(std::string(kFooter));
    }

    // How many arguments, counting the option itself, the vztrace option at `args[i]`
    // takes; 0 when `args[i]` is not one of vztrace's options.
    std::size_t option_width(const std::vector<std::string>& args, std::size_t i) const {
        const std::string& arg = args[i];
        if (arg.size() < 2 || arg[0] != '-') return 0;
        std::string name;
        bool value_attached = false;
        if (arg[1] == '-') {
            const std::size_t eq = arg.find('=');
            name = arg.substr(0, eq);
            value_attached = eq != std::string::npos;
        } else {
            name = arg.substr(0, 2);
            value_attached = arg.size() > 2;
        }
        const CLI::Option* option = app.get_option_no_throw(name);
        if (option == nullptr) return 0;
        if (option->get_expected_min() == 0 || value_attached) return 1;  // a flag
        return 2;
    }
};

}  // namespace

std::uint64_t parse_size(const std::string& text) {
    std::size_t end = 0;
    double value = 0;
    try {
        value = std::stod(text, &end);
    } catch (const std::exception&) {
        usage_error(fmt::format("invalid size '{}' (expected e.g. 512M or 2G)", text));
    }
    std::string unit = text.substr(end);
    std::transform(unit.begin(), unit.end(), unit.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (!unit.empty() && unit.back() == 'B') unit.pop_back();
    if (!unit.empty() && unit.back() == 'I') unit.pop_back();  // "GiB" reads as "G"
    double scale = 1;
    if (unit == "K") {
        scale = 1024.0;
    } else if (unit == "M") {
        scale = 1024.0 * 1024;
    } else if (unit == "G") {
        scale = 1024.0 * 1024 * 1024;
    } else if (unit == "T") {
        scale = 1024.0 * 1024 * 1024 * 1024;
    } else if (!unit.empty()) {
        usage_error(fmt::format("invalid size '{}' (expected e.g. 512M or 2G)", text));
    }
    if (!(value > 0) || value * scale < 1024 * 1024) {
        usage_error(fmt::format("size '{}' is too small (at least 1M)", text));
    }
    return static_cast<std::uint64_t>(value * scale);
}

Invocation parse_command_line(std::span<const std::string> args) {
    Invocation result;
    CliDefinition cli(result.trace);

    // Split: vztrace's options (optionally around a `run` keyword) up to the target.
    std::vector<std::string> all(args.begin(), args.end());
    std::vector<std::string> ours = {all.empty() ? std::string("vztrace") : all[0]};
    std::size_t i = 1;
    bool seen_run = false;
    while (i < all.size()) {
        const std::string& arg = all[i];
        if (arg == "run" && !seen_run) {
            seen_run = true;
            ++i;
            continue;
        }
        if (arg == "--") {
            ++i;
            break;
        }
        const std::size_t width = cli.option_width(all, i);
        if (width == 0) {
            if (arg.rfind("--", 0) == 0 && arg.size() > 2) {
                const std::string name = arg.substr(0, arg.find('='));
                const bool pythons = std::find(kPythonLongOptions.begin(), kPythonLongOptions.end(),
                                               name) != kPythonLongOptions.end();
                if (!pythons || seen_run) {
                    usage_error(fmt::format("unknown option '{}' (see vztrace --help)", name));
                }
            }
            break;
        }
        if (i + width > all.size()) {
            usage_error(fmt::format("option '{}' needs an argument", arg));
        }
        ours.insert(ours.end(), all.begin() + static_cast<std::ptrdiff_t>(i),
                    all.begin() + static_cast<std::ptrdiff_t>(i + width));
        i += width;
    }
    result.python_argv.assign(all.begin() + static_cast<std::ptrdiff_t>(i), all.end());

    std::vector<const char*> raw;
    raw.reserve(ours.size());
    for (const std::string& s : ours) raw.push_back(s.c_str());
    try {
        cli.app.parse(static_cast<int>(raw.size()), raw.data());
    } catch (const CLI::CallForHelp&) {
        result.action = Invocation::Action::kHelp;
        result.help = cli.app.help();
        return result;
    } catch (const CLI::ParseError& error) {
        usage_error(error.what());
    }
    if (cli.version) {
        result.action = Invocation::Action::kVersion;
        return result;
    }
    if (!cli.max_memory_text.empty()) result.trace.max_memory = parse_size(cli.max_memory_text);
    if (!cli.max_size_text.empty()) result.trace.max_size = parse_size(cli.max_size_text);
    if (!cli.ring_text.empty()) result.trace.ring = parse_size(cli.ring_text);
    if (!cli.tracer_entries_text.empty()) {
        if (!cli.ring_text.empty()) {
            usage_error("--ring and --tracer_entries both set the ring: give one of them");
        }
        const std::string& text = cli.tracer_entries_text;
        std::uint64_t calls = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), calls);
        if (error != std::errc() || end != text.data() + text.size() || calls == 0 ||
            calls > (std::uint64_t{1} << 40)) {
            usage_error(
                fmt::format("--tracer_entries {}: expected a number of calls, e.g. "
                            "1000000",
                            text));
        }
        result.trace.ring = tracer::ring_bytes_for_calls(calls);
    }
    if (!cli.hook_text.empty() && !tracer::parse_hook_choice(cli.hook_text, result.trace.hook)) {
        usage_error(fmt::format("--hook {}: no such mechanism (one of {})", cli.hook_text,
                                tracer::kHookChoices));
    }
    if (result.trace.output.empty()) usage_error("the output file name is empty");
    struct stat st {};
    const bool device = ::stat(result.trace.output.c_str(), &st) == 0 && !S_ISREG(st.st_mode) &&
                        !S_ISDIR(st.st_mode);  // -o /dev/null, a fifo: Perfetto
    if (tracer::format_of(result.trace.output) == tracer::TraceFormat::kUnknown && !device) {
        usage_error(fmt::format("cannot tell the trace format of '{}': name it with one of {}",
                                result.trace.output, tracer::kFormatList));
    }
    if (result.python_argv.empty()) {
        usage_error("no program to trace (try 'vztrace run app.py' or 'vztrace --help')");
    }
    result.process_name = check_python_options(result.python_argv);
    return result;
}

}  // namespace vztrace::launcher
