// launcher/ owns main(), the command line and every message a person reads. It knows
// nothing of Python.h: it splits argv into vztrace's options and python's argv, and hands
// both to embed/.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tracer/settings.hpp"

namespace vztrace::launcher {

struct Invocation {
    enum class Action { kRun, kHelp, kVersion };
    Action action = Action::kRun;
    tracer::TraceSettings trace;
    std::vector<std::string> python_argv;  // everything from the target on, untouched
    std::string process_name;              // the target: "app.py", "-m pkg", "-c print(1)", "-"
    std::string help;                      // filled for Action::kHelp
};

// Parses vztrace's argv (args[0] is the program name). For a run, options may also come
// from VZTRACE_* environment variables and from a config file (--config, else [tool.vztrace]
// of the nearest pyproject.toml; none in a child of a traced tree): the command line beats
// the environment, which beats the file. Throws SetupError(kUsage).
Invocation parse_command_line(std::span<const std::string> args);

// In a traced tree vztrace stands in for python (the program's sys.executable), and
// python runs `sys.executable report x` as the script named report: whether `word`, a name
// of vztrace's own (report, diff, export, combine, view, run), is such a script here.
bool python_script_named(const std::string& word);

// The length of the decimal number `text` starts with: digits with at most one point ("7",
// "0.5", "2.", ".5"); 0 when it starts with none. The options' numbers are read this way,
// since strtod alone also takes hex ("0x10" is 16), exponents, "inf" and leading blanks.
std::size_t decimal_length(std::string_view text);

// Parses sizes such as "512M", "2G", "1048576". Throws SetupError(kUsage).
std::uint64_t parse_size(const std::string& text);

// Parses durations such as "10us", "0.5ms", "2s", "300ns"; a bare number is microseconds
// (VizTracer's unit). Returns nanoseconds. Throws SetupError(kUsage).
std::uint64_t parse_duration(const std::string& text);

}  // namespace vztrace::launcher
