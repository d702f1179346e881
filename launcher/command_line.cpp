#include "launcher/command_line.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string_view>

#include "embed/setup_error.hpp"
#include "launcher/config_file.hpp"
#include "tracer/root_registry.hpp"

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
  vztrace view TRACE                 in a browser: speedscope offline, or ui.perfetto.dev

vztrace's options come first; everything from the target on (python's own flags such as
-u -B -E -s -S -I -P -O -X -W included) is handed to python untouched. Use `--` to end
vztrace's options explicitly.

Environment: every option has a variable that applies when the option is not given:
  VZTRACE_OUTPUT, VZTRACE_QUIET, VZTRACE_COMPRESS, VZTRACE_MAX_SIZE, VZTRACE_RING,
  VZTRACE_TRACER_ENTRIES, VZTRACE_IGNORE_C_FUNCTION, VZTRACE_INCLUDE_FILES,
  VZTRACE_EXCLUDE_FILES, VZTRACE_IGNORE_FROZEN, VZTRACE_MAX_STACK_DEPTH,
  VZTRACE_MIN_DURATION, VZTRACE_NO_STARTUP, VZTRACE_LOG_SPARSE, VZTRACE_LOG_FUNC_ARGS,
  VZTRACE_LOG_FUNC_RETVAL, VZTRACE_LOG_EXCEPTION, VZTRACE_LOG_GC, VZTRACE_LOG_PRINT,
  VZTRACE_LOG_AUDIT, VZTRACE_LOG_ASYNC, VZTRACE_IGNORE_MULTIPROCESS, VZTRACE_PID_SUFFIX,
  VZTRACE_OUTPUT_DIR, VZTRACE_HOOK, VZTRACE_MAX_MEMORY.

Configuration: [tool.vztrace] of the nearest pyproject.toml (the working directory's or
its nearest parent's; none if that file has no such table), or the file --config names,
sets options by their long names (max_memory = "64M", include_files = ["src"]; relative
paths are taken from the file's directory). The command line beats VZTRACE_* variables,
which beat the config file. Child processes take the root's settings and read no file.

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
// that take a value, attached or as the next argument. -t is accepted and ignored (python
// 2's tab warnings), as python 3 does.
constexpr std::string_view kPythonFlags = "bBdEhiIOPqRsStuvVx?";
constexpr std::string_view kPythonFlagsWithValue = "cmWX";
constexpr std::array<std::string_view, 6> kPythonLongOptions = {
    "--help",     "--version",       "--check-hash-based-pycs",
    "--help-env", "--help-xoptions", "--help-all"};

[[noreturn]] void usage_error(const std::string& message) {
    throw SetupError(ExitCode::kUsage, message);
}

// An option python does not know, in python's options. One of vztrace's there (`vztrace -q
// -o t.pftrace app.py`: -q is python's) is named as such, not as unknown.
[[noreturn]] void unknown_python_option(std::string_view name,
                                        const std::function<bool(std::string_view)>& is_ours) {
    if (is_ours(name)) {
        usage_error(
            fmt::format("option '{}' is vztrace's but comes after python's options, "
                        "which end vztrace's: give vztrace's options first",
                        name));
    }
    usage_error(fmt::format("unknown option '{}' (see vztrace --help)", name));
}

// Checks python's own leading options so that a typo gets one clear line from vztrace
// rather than python's multi-line usage text. Returns the target as the trace names the
// process: the script, "-m module", "-c" or "-" (standard input). `is_ours`: whether an
// option name is one of vztrace's.
std::string check_python_options(const std::vector<std::string>& argv,
                                 const std::function<bool(std::string_view)>& is_ours) {
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& arg = argv[i];
        if (arg.size() < 2 || arg[0] != '-') return arg;  // the script, or "-" for standard input
        if (arg == "--") return i + 1 < argv.size() ? argv[i + 1] : "-";
        if (arg[1] == '-') {
            const std::string_view name = std::string_view(arg).substr(0, arg.find('='));
            if (std::find(kPythonLongOptions.begin(), kPythonLongOptions.end(), name) ==
                kPythonLongOptions.end()) {
                unknown_python_option(name, is_ours);
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
                unknown_python_option(std::string{'-', flag}, is_ours);
            }
        }
    }
    return "-";  // only options: python reads the program from standard input
}

// Option groups, in the order --help lists them.
constexpr const char* kOutputGroup = "Output";
constexpr const char* kFilterGroup = "Filters (what is left out)";
constexpr const char* kLoggingGroup = "Logging (what else is recorded)";
constexpr const char* kProcessGroup = "Processes";
constexpr const char* kRecordingGroup = "Recording";
constexpr const char* kConfigGroup = "Configuration";

// A path made absolute and lexically normal (children run elsewhere): a relative one is
// taken from `base`, the working directory for the command line and the environment, the
// file's directory for a config file.
std::string absolute_path(const std::string& path, const std::filesystem::path& base) {
    if (path.empty() || path[0] == '*' || path[0] == '<') return path;
    std::string joined = (base / path).lexically_normal().string();
    if (path.back() == '/' && joined.back() != '/') joined += '/';
    return joined;
}

// Backslashes before the characters fnmatch gives a meaning to: the text matches itself.
std::string glob_escaped(const std::string& text) {
    std::string escaped;
    for (const char c : text) {
        if (c == '*' || c == '?' || c == '[' || c == '\\') escaped += '\\';
        escaped += c;
    }
    return escaped;
}

// An --include-files / --exclude-files pattern made absolute as a path is, lexically normal
// as the files matched are (tracer/python_symbols.cpp). The directory it is taken from is
// literal: one named "build[1]" or "a*b" was read as a glob, which matched nothing of it
// (hunt AS), so its characters are escaped when the pattern is matched as a glob, and then
// so are those of a pattern meant as a plain prefix.
std::string absolute_pattern(const std::string& pattern, const std::filesystem::path& base) {
    if (pattern.empty() || pattern[0] == '*' || pattern[0] == '<' || pattern[0] == '/') {
        return absolute_path(pattern, base);
    }
    const std::string base_text = base.string();
    const bool glob = pattern.find_first_of("*?[") != std::string::npos;
    const bool literal_base = base_text.find_first_of("*?[") == std::string::npos &&
                              (!glob || base_text.find('\\') == std::string::npos);
    if (literal_base) return absolute_path(pattern, base);
    return absolute_path(glob ? pattern : glob_escaped(pattern), glob_escaped(base_text));
}

std::string absolute_pattern(const std::string& pattern) {
    std::error_code error;
    const std::filesystem::path cwd = std::filesystem::current_path(error);
    return error ? pattern : absolute_pattern(pattern, cwd);
}

// Set (and non-empty) in every process of a traced tree once its root has started (see
// tracer/process_tree.cpp): such a process takes the root's settings from VZTRACE_*.

// Keys a config file may not set: they are not settings of a run.
constexpr std::array<std::string_view, 4> kNotConfigurable = {"help", "version", "config",
                                                              "no-config"};

// Options whose values are paths, taken from a config file's directory.
constexpr std::array<std::string_view, 4> kPathOptions = {"output", "output-dir", "include-files",
                                                          "exclude-files"};

struct CliDefinition {
    CLI::App app{"vztrace: trace every call of a Python program into a timeline", "vztrace"};
    std::string max_memory_text;
    std::string max_size_text;
    std::string ring_text;
    std::string hook_text;
    std::string tracer_entries_text;
    std::string max_stack_depth_text;
    std::string min_duration_text;
    std::vector<std::string> log_audit_events;
    std::string config_file;
    bool no_config = false;
    bool version = false;

    explicit CliDefinition(tracer::TraceSettings& trace) {
        app.set_help_flag("-h,--help", "Print this help and exit");
        // An option given twice takes its last value, as python's and argparse's do (a
        // wrapper's `$OPTS -o x`); the lists (--include-files) take every value.
        app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
        app.add_flag("--version", version, "Print vztrace's and the embedded Python's versions");

        app.add_option("-o,--output,--output_file", trace.output,
                       "Trace file to write (default: result.pftrace); the format follows the "
                       "extension; an existing file is replaced only once the new trace is "
                       "complete")
            ->type_name("FILE")
            ->group(kOutputGroup);
        app.add_flag("--quiet", trace.quiet, "Print nothing but errors")->group(kOutputGroup);
        app.add_flag("--compress", trace.compress,
                     "Perfetto output in compressed packets (zlib; every Perfetto reader "
                     "opens them): a quarter to a tenth of the size")
            ->group(kOutputGroup);
        app.add_option("--max-size", max_size_text,
                       "Largest trace file to write (e.g. 500M, 2G); past it recording stops and "
                       "the trace and stderr say how many events were not recorded")
            ->type_name("SIZE")
            ->group(kOutputGroup);
        app.add_option("--ring", ring_text,
                       "Flight recorder: keep only the newest SIZE of records (e.g. 64M) in "
                       "memory and write them at the end (exit, SIGTERM, SIGHUP); calls open at "
                       "the cut start there, flagged")
            ->type_name("SIZE")
            ->group(kOutputGroup);
        app.add_option("--tracer_entries,--tracer-entries", tracer_entries_text,
                       "VizTracer's ring, by calls: keep (at least) the newest N calls, as "
                       "--ring does by size")
            ->type_name("N")
            ->group(kOutputGroup);

        app.add_flag("--ignore-c-function,--ignore_c_function", trace.ignore_c_function,
                     "Record Python functions only, not calls of C functions (builtins)")
            ->group(kFilterGroup);
        app.add_option("--include-files,--include_files", trace.include_files,
                       "Record only functions defined in files under PATH (a directory or "
                       "file prefix, or a glob such as '*/mypkg/*'); repeat it, or separate "
                       "with ':'. What they call from other files is not recorded, C calls "
                       "they make are")
            ->delimiter(':')
            ->type_name("PATH")
            ->group(kFilterGroup);
        app.add_option("--exclude-files,--exclude_files", trace.exclude_files,
                       "Leave out functions defined in files under PATH (prefix or glob, as "
                       "--include-files); their callees stay, nested under the caller kept")
            ->delimiter(':')
            ->type_name("PATH")
            ->group(kFilterGroup);
        app.add_flag("--ignore-frozen,--ignore_frozen", trace.ignore_frozen,
                     "Leave out importlib's frozen frames (<frozen importlib._bootstrap>, ...)")
            ->group(kFilterGroup);
        app.add_option("--max-stack-depth,--max_stack_depth", max_stack_depth_text,
                       "Leave out calls nested deeper than N on their thread")
            ->type_name("N")
            ->group(kFilterGroup);
        app.add_option("--min-duration,--min_duration", min_duration_text,
                       "Leave out calls shorter than DURATION (e.g. 10us, 0.5ms; a bare number "
                       "is microseconds, as VizTracer's); the longer calls they make stay")
            ->type_name("DURATION")
            ->group(kFilterGroup);
        app.add_flag("--no-startup", trace.no_startup,
                     "Leave out the interpreter's start-up (site, .pth files): record from "
                     "the program's first line")
            ->group(kFilterGroup);
        app.add_flag("--log-sparse,--log_sparse", trace.log_sparse,
                     "Record only the functions decorated with @vztrace.sparse")
            ->group(kFilterGroup);

        app.add_flag("--log-func-args,--log_func_args", trace.log_func_args,
                     "Record the repr of each Python call's arguments (cut at 512 bytes)")
            ->group(kLoggingGroup);
        app.add_flag("--log-func-retval,--log_func_retval", trace.log_func_retval,
                     "Record the repr of each Python call's return value (cut at 512 bytes)")
            ->group(kLoggingGroup);
        app.add_flag("--log-exception,--log_exception", trace.log_exception,
                     "Record the type and message of the exception a call ends by")
            ->group(kLoggingGroup);
        app.add_flag("--log-gc,--log_gc", trace.log_gc,
                     "Record garbage collections as slices, with generation and counts")
            ->group(kLoggingGroup);
        app.add_flag("--log-print,--log_print", trace.log_print,
                     "Record what print() writes, as instants")
            ->group(kLoggingGroup);
        app.add_option("--log-audit,--log_audit", log_audit_events,
                       "Record audit events as instants: all of them, or with "
                       "--log-audit=EVENT,EVENT only those")
            ->expected(0, CLI::detail::expected_max_vector_size)
            ->delimiter(',')
            ->type_name("[=EVENT,...]")
            ->group(kLoggingGroup);
        app.add_flag("--log-async,--log_async", trace.log_async,
                     "Show each asyncio Task on a track of its own: when it runs, when it waits")
            ->group(kLoggingGroup);

        app.add_flag("--ignore-multiprocess,--ignore_multiprocess", trace.ignore_multiprocess,
                     "Trace the root process only, not its children")
            ->group(kProcessGroup);
        app.add_flag("--pid-suffix,--pid_suffix", trace.pid_suffix,
                     "Each process writes its own file, named with its pid "
                     "(result_1234.json), instead of one trace from the root")
            ->group(kProcessGroup);
        app.add_option("--output-dir,--output_dir", trace.output_dir,
                       "Each process writes its own file, named with its pid, in DIR")
            ->type_name("DIR")
            ->group(kProcessGroup);

        app.add_option("--hook", hook_text,
                       "How Python calls are recorded: auto (default: the frame-evaluation "
                       "hook where it is exact, else sys.monitoring on 3.12+ or the profile "
                       "hook on 3.11), frame, monitoring (3.12+) or profile (3.11)")
            ->type_name("MECHANISM")
            ->group(kRecordingGroup);
        app.add_option("--max-memory", max_memory_text,
                       "Memory for event records not yet written (e.g. 16M, 1G; default 32M); "
                       "when it is full the program waits for the writer, nothing is lost")
            ->type_name("SIZE")
            ->group(kRecordingGroup);

        app.add_option("--config", config_file,
                       "Read options from FILE ([tool.vztrace] of a pyproject.toml, or a "
                       "vztrace.toml) instead of the nearest pyproject.toml")
            ->type_name("FILE")
            ->group(kConfigGroup);
        app.add_flag("--no-config", no_config, "Ignore pyproject.toml's [tool.vztrace]")
            ->group(kConfigGroup);
        app.footer(std::string(kFooter));
        // Each setting's variable is VZTRACE_ and its first long name in capitals:
        // --log-func-args is VZTRACE_LOG_FUNC_ARGS, --tracer_entries VZTRACE_TRACER_ENTRIES.
        for (CLI::Option* option : app.get_options()) {
            const std::vector<std::string>& names = option->get_lnames();
            if (names.empty() || std::find(kNotConfigurable.begin(), kNotConfigurable.end(),
                                           names.front()) != kNotConfigurable.end()) {
                continue;
            }
            std::string variable = "VZTRACE_" + names.front();
            for (char& c : variable) c = c == '-' ? '_' : static_cast<char>(std::toupper(c));
            option->envname(variable);
        }
    }

    // The vztrace option `arg` names ("--output=x", "-o"), or nullptr.
    const CLI::Option* option_named(const std::string& arg) const {
        if (arg.size() < 2 || arg[0] != '-') return nullptr;
        const std::string name = arg[1] == '-' ? arg.substr(0, arg.find('=')) : arg.substr(0, 2);
        return app.get_option_no_throw(name);
    }

    // How many arguments, counting the option itself, the vztrace option at `args[i]`
    // takes; 0 when `args[i]` is not one of vztrace's options.
    std::size_t option_width(const std::vector<std::string>& args, std::size_t i) const {
        const std::string& arg = args[i];
        const CLI::Option* option = option_named(arg);
        if (option == nullptr) return 0;
        const bool value_attached =
            arg[1] == '-' ? arg.find('=') != std::string::npos : arg.size() > 2;
        if (option->get_expected_min() == 0 || value_attached) return 1;  // a flag
        return 2;
    }

    // Where an option's value came from, lowest precedence first.
    enum class Source { kConfigFile, kEnvironment, kCommandLine };
    std::set<const CLI::Option*> on_command_line;                // filled while splitting argv
    std::map<const CLI::Option*, std::string> from_config_file;  // the entry's `where`

    Source source_of(const CLI::Option* option) const {
        if (on_command_line.contains(option)) return Source::kCommandLine;
        return from_config_file.contains(option) ? Source::kConfigFile : Source::kEnvironment;
    }

    // How an error message names the origin of `name`'s value: "--max-memory",
    // "VZTRACE_MAX_MEMORY" or "/p/pyproject.toml:3: [tool.vztrace] max_memory".
    std::string origin(const char* name) const { return origin(app.get_option(name), name); }
    std::string origin(const CLI::Option* option, const std::string& name) const {
        switch (source_of(option)) {
            case Source::kConfigFile:
                return from_config_file.at(option);
            case Source::kEnvironment:
                return option->get_envname();
            case Source::kCommandLine:
                break;
        }
        return name;
    }

    // Runs `convert`, a check of the value of option `name`, prefixing a usage error with
    // where the value came from.
    template <typename Convert>
    void checked(const char* name, Convert&& convert) const {
        try {
            convert();
        } catch (const SetupError& error) {
            throw SetupError(error.code(), fmt::format("{}: {}", origin(name), error.what()));
        }
    }

    // The option a config file's key sets: its long name, with '_' or '-' between words.
    CLI::Option* option_for(const ConfigEntry& entry) {
        std::string dashed = entry.key;
        std::replace(dashed.begin(), dashed.end(), '_', '-');
        if (std::find(kNotConfigurable.begin(), kNotConfigurable.end(), dashed) !=
            kNotConfigurable.end()) {
            usage_error(fmt::format("{}: not allowed in a config file", entry.where));
        }
        std::string underscored = entry.key;
        std::replace(underscored.begin(), underscored.end(), '-', '_');
        for (const std::string& name : {entry.key, dashed, underscored}) {
            if (name.size() < 2 || name[0] == '-') continue;
            if (CLI::Option* option = app.get_option_no_throw("--" + name)) return option;
        }
        usage_error(fmt::format("{}: no such option (see vztrace --help)", entry.where));
    }

    // The values `entry` gives `option`, as the command line would: type checked, paths
    // made absolute from `dir`. Empty when the entry leaves the option unset.
    std::vector<std::string> values_for(const CLI::Option& option, const ConfigEntry& entry,
                                        const std::filesystem::path& dir) const {
        const bool is_boolean = entry.kind == ConfigEntry::Kind::kBoolean;
        if (option.get_expected_max() == 0) {  // a flag
            if (!is_boolean) usage_error(fmt::format("{}: expected true or false", entry.where));
            return entry.values;
        }
        if (option.get_expected_min() == 0 && is_boolean) {  // --log-audit: true is all events
            return entry.values.front() == "true" ? entry.values : std::vector<std::string>{};
        }
        if (is_boolean) {
            usage_error(fmt::format("{}: expected a value, not true or false", entry.where));
        }
        const bool array = entry.kind == ConfigEntry::Kind::kStrings ||
                           entry.kind == ConfigEntry::Kind::kOtherArray;
        if (array && option.get_items_expected_max() < 2) {
            usage_error(fmt::format("{}: expected one value, not an array", entry.where));
        }
        if (entry.kind == ConfigEntry::Kind::kOtherArray) {
            usage_error(fmt::format("{}: expected an array of strings", entry.where));
        }
        const bool paths = std::any_of(
            kPathOptions.begin(), kPathOptions.end(),
            [&](std::string_view name) { return option.check_lname(std::string(name)); });
        // Paths, event names and the hook's name are text: a number there is a mistake, not
        // a file named "5".
        if (entry.kind == ConfigEntry::Kind::kNumber &&
            (paths || option.check_lname("log-audit") || option.check_lname("hook"))) {
            usage_error(fmt::format("{}: expected a string, not a number", entry.where));
        }
        if (!paths) return entry.values;
        std::vector<std::string> values;
        for (const std::string& value : entry.values) {
            for (const std::string& path : option.get_items_expected_max() < 2
                                               ? std::vector<std::string>{value}
                                               : CLI::detail::split(value, ':')) {
                values.push_back(option.check_lname("include-files") ||
                                         option.check_lname("exclude-files")
                                     ? absolute_pattern(path, dir)
                                     : absolute_path(path, dir));
            }
        }
        return values;
    }

    // Gives each option that neither the command line nor the environment set its value
    // from `config`. Every entry is checked, those that are overridden too.
    void apply_config(const ConfigFile& config) {
        const std::filesystem::path dir = config.path.parent_path();
        for (const ConfigEntry& entry : config.entries) {
            CLI::Option* option = option_for(entry);
            std::vector<std::string> values = values_for(*option, entry, dir);
            if (const auto earlier = from_config_file.find(option);
                earlier != from_config_file.end()) {
                usage_error(
                    fmt::format("{}: sets the same option as {}", entry.where, earlier->second));
            }
            if (option->count() > 0 || values.empty()) continue;
            option->add_result(std::move(values));
            try {
                option->run_callback();
            } catch (const CLI::Error& error) {
                usage_error(fmt::format("{}: {}", entry.where, error.what()));
            }
            from_config_file.emplace(option, entry.where);
        }
    }
};

// A flag's variable (VZTRACE_QUIET=...) holds what CLI11 reads as true or false, or an
// error names the variable: CLI11's own ("Could not convert: --quiet = bogus") named the
// option, which the user had not written.
void check_flag_variables(const CliDefinition& cli) {
    for (const CLI::Option* option : cli.app.get_options()) {
        if (option->get_expected_max() != 0 || option->get_envname().empty()) continue;
        const char* value = std::getenv(option->get_envname().c_str());
        if (value == nullptr || *value == '\0') continue;
        std::string word = value;
        std::transform(word.begin(), word.end(), word.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        const bool named = word == "true" || word == "on" || word == "yes" || word == "enable" ||
                           word == "false" || word == "off" || word == "no" || word == "disable";
        const bool one_char = word.size() == 1 &&
                              std::string_view("ty+1fn-0").find(word[0]) != std::string_view::npos;
        std::int64_t number = 0;
        const auto [end, error] = std::from_chars(word.data(), word.data() + word.size(), number);
        const bool integer = error == std::errc() && end == word.data() + word.size();
        if (!named && !one_char && !integer) {
            usage_error(
                fmt::format("{}: '{}' is neither true nor false (1, true, yes, on; 0, "
                            "false, no, off)",
                            option->get_envname(), value));
        }
    }
}

std::string long_name(const CLI::Option* option) { return "--" + option->get_lnames().front(); }

// The usage error of an empty value of `option`, given as `origin` names.
std::string empty_value_error(const std::string& origin, const CLI::Option* option) {
    return long_name(option) == "--output"
               ? fmt::format("{}: the output file name is empty", origin)
               : fmt::format("{}: the value is empty", origin);
}

// Turns the parsed texts into settings, checking each value; an error names the option,
// variable or config file key the value came from.
void convert_values(CliDefinition& cli, tracer::TraceSettings& trace) {
    trace.output_on_command_line =
        cli.source_of(cli.app.get_option("--output")) == CliDefinition::Source::kCommandLine;
    // A value given empty is a mistake (`--include-files "$SRC"` with SRC unset), never a
    // silent "not set". A variable set empty is unset, as python's PYTHON* variables are.
    // Each value of a config file's list counts (include_files = ["src", ""]); the command
    // line's are checked as it is split.
    const auto is_empty = [](const std::string& value) { return value.empty(); };
    for (const CLI::Option* option : cli.app.get_options()) {
        if (option->get_expected_min() == 0 || option->count() == 0) continue;  // flags
        const auto& results = option->results();
        const bool empty = cli.source_of(option) == CliDefinition::Source::kConfigFile
                               ? std::any_of(results.begin(), results.end(), is_empty)
                               : std::all_of(results.begin(), results.end(), is_empty);
        if (empty) usage_error(empty_value_error(cli.origin(option, long_name(option)), option));
    }
    // A list variable with nothing in it (VZTRACE_INCLUDE_FILES="$A:$B" with both unset),
    // which splits into no value at all, unless the command line sets the option.
    for (const CLI::Option* option : cli.app.get_options()) {
        const char delimiter = option->get_delimiter();
        if (delimiter == '\0' || option->get_envname().empty()) continue;
        if (cli.source_of(option) == CliDefinition::Source::kCommandLine) continue;
        const char* value = std::getenv(option->get_envname().c_str());
        if (value != nullptr && *value != '\0' &&
            std::string_view(value).find_first_not_of(delimiter) == std::string_view::npos) {
            usage_error(fmt::format("{}: the value is empty", option->get_envname()));
        }
    }
    cli.checked("--max-memory", [&] {
        if (!cli.max_memory_text.empty()) trace.max_memory = parse_size(cli.max_memory_text);
    });
    cli.checked("--max-size", [&] {
        if (!cli.max_size_text.empty()) trace.max_size = parse_size(cli.max_size_text);
    });
    if (!cli.ring_text.empty() && !cli.tracer_entries_text.empty()) {
        // Both set the ring: the one of higher precedence wins, or neither does.
        const auto ring = cli.source_of(cli.app.get_option("--ring"));
        const auto entries = cli.source_of(cli.app.get_option("--tracer_entries"));
        if (ring == entries) {
            usage_error(fmt::format("{} and {} both set the ring: give one of them",
                                    cli.origin("--ring"), cli.origin("--tracer_entries")));
        }
        (ring < entries ? cli.ring_text : cli.tracer_entries_text).clear();
    }
    // A ring keeps the newest events and its size bounds the trace; a cap on the file would
    // keep the oldest part of it (the ring is written oldest first) and drop the newest.
    const char* ring = !cli.ring_text.empty()             ? "--ring"
                       : !cli.tracer_entries_text.empty() ? "--tracer_entries"
                                                          : nullptr;
    if (ring != nullptr && !cli.max_size_text.empty()) {
        usage_error(fmt::format(
            "{} and {} do not go together: the ring's size bounds the trace, and a cap on the "
            "file would keep its oldest events instead of its newest",
            cli.origin(ring), cli.origin("--max-size")));
    }
    cli.checked("--ring", [&] {
        if (!cli.ring_text.empty()) trace.ring = parse_size(cli.ring_text);
    });
    cli.checked("--tracer_entries", [&] {
        const std::string& text = cli.tracer_entries_text;
        if (text.empty()) return;
        std::uint64_t calls = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), calls);
        if (error != std::errc() || end != text.data() + text.size() || calls == 0 ||
            calls > (std::uint64_t{1} << 40)) {
            usage_error(fmt::format("invalid number of calls '{}' (expected e.g. 1000000)", text));
        }
        trace.ring = tracer::ring_bytes_for_calls(calls);
        trace.ring_calls = calls;
    });
    cli.checked("--max-stack-depth", [&] {
        const std::string& text = cli.max_stack_depth_text;
        if (text.empty()) return;
        std::uint32_t depth = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), depth);
        if (error != std::errc() || end != text.data() + text.size() || depth == 0) {
            usage_error(fmt::format("invalid depth '{}' (expected 1 or more)", text));
        }
        trace.max_stack_depth = depth;
    });
    cli.checked("--min-duration", [&] {
        if (!cli.min_duration_text.empty()) {
            trace.min_duration_ns = parse_duration(cli.min_duration_text);
        }
    });
    for (auto* files : {&trace.include_files, &trace.exclude_files}) {
        std::erase(*files, std::string());
        for (std::string& path : *files) path = absolute_pattern(path);
    }
    if (cli.app.count("--log-audit") > 0) {
        // As for every flag: 1, true, yes, on (or no value) turn it on, 0, false, no, off
        // turn it off (VZTRACE_LOG_AUDIT=0); anything else names the events.
        const auto lowered = [](std::string text) {
            std::transform(text.begin(), text.end(), text.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            return text;
        };
        const std::vector<std::string>& given = cli.log_audit_events;
        // --log-audit alone is every event; --log-audit= (caught as the command line is
        // split) and log_audit = "" in a config file are a list left empty by mistake.
        if (cli.source_of(cli.app.get_option("--log-audit")) ==
                CliDefinition::Source::kConfigFile &&
            std::any_of(given.begin(), given.end(), is_empty)) {
            usage_error(fmt::format("{}: the value is empty", cli.origin("--log-audit")));
        }
        // Given more than once, in order: events add up, a word of every event makes it
        // every event, and one turning it off forgets those before it (`--log-audit=open
        // --log-audit` is every event, `--log-audit=open --log-audit=0` none).
        bool every_event = false;
        trace.log_audit = false;
        trace.log_audit_events.clear();
        for (const std::string& event : given) {
            const std::string word = lowered(event);
            if (word == "0" || word == "false" || word == "no" || word == "off") {
                trace.log_audit = false;
                every_event = false;
                trace.log_audit_events.clear();
            } else if (event.empty() || word == "1" || word == "true" || word == "yes" ||
                       word == "on") {
                trace.log_audit = true;
                every_event = true;
            } else {
                trace.log_audit = true;
                trace.log_audit_events.push_back(event);
            }
        }
        if (given.empty()) trace.log_audit = true;  // the flag alone
        if (every_event) trace.log_audit_events.clear();
    }
    cli.checked("--hook", [&] {
        if (!cli.hook_text.empty() && !tracer::parse_hook_choice(cli.hook_text, trace.hook)) {
            usage_error(fmt::format("no such mechanism '{}' (one of {})", cli.hook_text,
                                    tracer::kHookChoices));
        }
    });
    // Said here, where the settings' origins are known (a config file's line), and again
    // by the tracer for a child given them in VZTRACE_*.
    if (trace.hook == tracer::HookChoice::kFrame) {
        for (const auto& [name, on] : {std::pair{"--log-func-args", trace.log_func_args},
                                       std::pair{"--log-func-retval", trace.log_func_retval},
                                       std::pair{"--log-exception", trace.log_exception}}) {
            if (!on) continue;
            usage_error(
                fmt::format("{} and {} do not go together: the frame hook records no "
                            "arguments, return values or exceptions (use --hook auto)",
                            cli.origin("--hook"), cli.origin(name)));
        }
    }
    cli.checked("--output", [&] {
        if (trace.output.empty()) usage_error("the output file name is empty");
        struct stat st {};
        const bool exists = ::stat(trace.output.c_str(), &st) == 0;
        if (exists && S_ISDIR(st.st_mode) && trace.output_dir.empty() && !trace.pid_suffix) {
            // Said before the program runs, not after.
            usage_error(fmt::format("'{}' is a directory: name the trace file", trace.output));
        }
        const bool device = exists && !S_ISREG(st.st_mode) &&
                            !S_ISDIR(st.st_mode);  // -o /dev/null, a fifo: Perfetto
        if (device && trace.pid_suffix && trace.output_dir.empty()) {
            // Each process's file would go beside it: /dev/null_1234, a regular file in /dev.
            usage_error(
                fmt::format("'{}' is a device or a pipe, and {} names each process's "
                            "file after it: name a file",
                            trace.output, cli.origin("--pid-suffix")));
        }
        if (tracer::format_of(trace.output) == tracer::TraceFormat::kUnknown && !device) {
            usage_error(fmt::format("cannot tell the trace format of '{}': name it with one of {}",
                                    trace.output, tracer::kFormatList));
        }
    });
    if (trace.compress && tracer::format_of(trace.output) == tracer::TraceFormat::kJson) {
        usage_error(fmt::format(
            "{} compresses Perfetto output, and '{}' is JSON (a name ending .json.gz is gzipped)",
            cli.origin("--compress"), trace.output));
    }
}

// The config file of this run: --config's, else the nearest pyproject.toml's [tool.vztrace].
// None with --no-config, and none in a child of a traced tree: it has the root's settings
// in VZTRACE_* (its working directory may see another pyproject.toml).
std::optional<ConfigFile> load_config(const CliDefinition& cli) {
    if (!cli.config_file.empty() && cli.no_config) {
        usage_error("--config and --no-config contradict each other: give one of them");
    }
    if (cli.no_config || tracer::in_traced_tree()) return std::nullopt;
    if (!cli.config_file.empty()) return read_config_file(cli.config_file, true);
    std::error_code error;
    const std::filesystem::path cwd = std::filesystem::current_path(error);
    if (error) return std::nullopt;
    const std::optional<std::filesystem::path> pyproject = find_pyproject(cwd);
    if (!pyproject) return std::nullopt;
    return read_config_file(*pyproject, false);
}

}  // namespace

std::size_t decimal_length(std::string_view text) {
    const std::size_t digits = text.find_first_not_of("0123456789");
    if (digits == std::string_view::npos) return text.size();
    std::size_t end = digits;
    if (text[end] == '.')
        end = std::min(text.find_first_not_of("0123456789", end + 1), text.size());
    return end == 1 && text[0] == '.' ? 0 : end;  // "." alone is no number
}

std::uint64_t parse_size(const std::string& text) {
    // A decimal number and a unit: a value past 64 bits would wrap to 0 (a ring silently off).
    const std::size_t end = decimal_length(text);
    if (end == 0) usage_error(fmt::format("invalid size '{}' (expected e.g. 512M or 2G)", text));
    const double value = std::strtod(text.substr(0, end).c_str(), nullptr);
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
    constexpr double kLargest = 1024.0 * 1024 * 1024 * 1024 * 1024;  // 1024T
    if (value * scale > kLargest) {
        usage_error(fmt::format("size '{}' is too large (at most 1024T)", text));
    }
    return static_cast<std::uint64_t>(value * scale);
}

std::uint64_t parse_duration(const std::string& text) {
    // A decimal number and a unit, as sizes.
    const std::size_t end = decimal_length(text);
    const bool decimal = end > 0;
    const double value = decimal ? std::strtod(text.substr(0, end).c_str(), nullptr) : 0;
    std::string unit = decimal ? text.substr(end) : std::string("?");  // any case, as sizes' units
    std::transform(unit.begin(), unit.end(), unit.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    double scale = 0;
    if (unit.empty() || unit == "us") {  // VizTracer's --min_duration is in microseconds
        scale = 1e3;
    } else if (unit == "ns") {
        scale = 1;
    } else if (unit == "ms") {
        scale = 1e6;
    } else if (unit == "s") {
        scale = 1e9;
    }
    if (!decimal || scale == 0 || !(value >= 0) || value * scale > 1e18) {
        usage_error(fmt::format("invalid duration '{}' (expected e.g. 10us, 0.5ms, 2s)", text));
    }
    return static_cast<std::uint64_t>(value * scale + 0.5);
}

namespace {

// `vztrace -o app.json app.json`: the trace would replace the program it traces.
void refuse_output_over_script(const Invocation& invocation) {
    const tracer::TraceSettings& trace = invocation.trace;
    const std::string& script = invocation.process_name;
    if (script.empty() || script.front() == '-' || trace.pid_suffix || !trace.output_dir.empty() ||
        tracer::in_traced_tree()) {
        return;
    }
    struct stat output {};
    struct stat program {};
    if (::stat(trace.output.c_str(), &output) == 0 && ::stat(script.c_str(), &program) == 0 &&
        S_ISREG(output.st_mode) && output.st_dev == program.st_dev &&
        output.st_ino == program.st_ino) {
        usage_error(fmt::format("the trace file '{}' is the script '{}': it would be replaced",
                                trace.output, script));
    }
}

}  // namespace

bool python_script_named(const std::string& word) {
    std::error_code ignored;
    return tracer::in_traced_tree() && std::filesystem::exists(word, ignored);
}

Invocation parse_command_line(std::span<const std::string> args) {
    Invocation result;
    CliDefinition cli(result.trace);

    // Split: vztrace's options (optionally around a `run` keyword) up to the target.
    std::vector<std::string> all(args.begin(), args.end());
    std::vector<std::string> ours = {all.empty() ? std::string("vztrace") : all[0]};
    // In a traced tree, vztrace stands in for python (the program's sys.executable): the
    // options both have are python's, and no program reads one from standard input.
    const bool in_tree = tracer::in_traced_tree();
    std::size_t i = 1;
    bool seen_run = false;
    while (i < all.size()) {
        const std::string& arg = all[i];
        if (in_tree && (arg == "--version" || arg == "--help" || arg == "-h")) break;
        // --run: VizTracer's spelling. In a traced tree a script named run is python's.
        if ((arg == "run" || arg == "--run") && !seen_run && !python_script_named(arg)) {
            seen_run = true;
            ++i;
            continue;
        }
        if (arg == "--log-audit=" || arg == "--log_audit=") {
            usage_error("--log-audit: the value is empty");
        }
        if (arg == "--") {
            // python's own in a child: `python -- -c x` runs a script named "-c".
            if (!in_tree) ++i;
            break;
        }
        const std::size_t width = cli.option_width(all, i);
        if (width == 0) {
            if (arg.rfind("--", 0) == 0 && arg.size() > 2) {
                const std::string name = arg.substr(0, arg.find('='));
                const bool pythons = std::find(kPythonLongOptions.begin(), kPythonLongOptions.end(),
                                               name) != kPythonLongOptions.end();
                // In a traced tree python says what is wrong, as it would there.
                if ((!pythons || seen_run) && !in_tree) {
                    usage_error(fmt::format("unknown option '{}' (see vztrace --help)", name));
                }
            }
            break;
        }
        if (i + width > all.size()) {
            usage_error(fmt::format("option '{}' needs an argument", arg));
        }
        const CLI::Option* option = cli.option_named(arg);
        // A value given empty (`--include-files "$SRC"` or `--output-dir=$DIR` with the
        // variable unset); CLI11 took `--name=` for no value, and the next argument, a
        // vztrace option, for its value.
        if (option->get_expected_min() > 0) {
            const bool attached_empty = arg.rfind("--", 0) == 0 && arg.ends_with('=');
            if (attached_empty || (width == 2 && all[i + 1].empty())) {
                usage_error(empty_value_error(long_name(option), option));
            }
        }
        // A list with nothing in it (`--include-files "$A:$B"` with both unset): CLI11 would
        // take the next argument, a vztrace option, for its value.
        if (const char delimiter = option->get_delimiter(); delimiter != '\0') {
            const std::size_t equals = arg.rfind("--", 0) == 0 ? arg.find('=') : std::string::npos;
            const std::string value = equals != std::string::npos ? arg.substr(equals + 1)
                                      : width == 2                ? all[i + 1]
                                                                  : std::string();
            if (!value.empty() && value.find_first_not_of(delimiter) == std::string::npos) {
                usage_error(fmt::format("--{}: the value is empty", option->get_lnames().front()));
            }
        }
        cli.on_command_line.insert(option);
        ours.insert(ours.end(), all.begin() + static_cast<std::ptrdiff_t>(i),
                    all.begin() + static_cast<std::ptrdiff_t>(i + width));
        i += width;
    }
    result.python_argv.assign(all.begin() + static_cast<std::ptrdiff_t>(i), all.end());
    // A vztrace the program starts with an output of its own (`sys.executable -o FILE ...`)
    // is a root of its own: its settings are its command line's alone, not those the tree's
    // root left in VZTRACE_* for its children (a JSON -o refused for the outer --compress, a
    // file put in the outer --output-dir).
    if (in_tree && cli.on_command_line.contains(cli.app.get_option("--output"))) {
        for (const CLI::Option* option : cli.app.get_options()) {
            if (!option->get_envname().empty()) ::unsetenv(option->get_envname().c_str());
        }
    }

    std::vector<const char*> raw;
    raw.reserve(ours.size());
    for (const std::string& s : ours) raw.push_back(s.c_str());
    check_flag_variables(cli);
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
    if (const std::optional<ConfigFile> config = load_config(cli)) {
        // Every value of the file is checked, those the environment or the command line
        // override too: a mistake in it shows whatever the run's flags.
        tracer::TraceSettings unused;
        CliDefinition check(unused);
        check.apply_config(*config);
        convert_values(check, unused);
        cli.apply_config(*config);
    }
    convert_values(cli, result.trace);
    if (result.python_argv.empty() && (seen_run || !in_tree)) {
        usage_error(
            "no program to trace (try 'vztrace run app.py', '-' for one read from standard "
            "input, or 'vztrace --help')");
    }
    try {
        result.process_name =
            check_python_options(result.python_argv, [&cli](std::string_view name) {
                return cli.app.get_option_no_throw(std::string(name)) != nullptr;
            });
    } catch (const SetupError&) {
        // In a traced tree vztrace is the program's python: python's own usage text and
        // status say what is wrong with its options (-Z, -X without a value), as they would.
        if (!in_tree) throw;
        result.process_name = "-";
    }
    refuse_output_over_script(result);
    return result;
}

}  // namespace vztrace::launcher
