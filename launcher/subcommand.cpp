#include "launcher/subcommand.hpp"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tracer/format/chrome_json.hpp"

namespace vztrace::launcher {

int fail(ExitCode code, const std::string& message) {
    std::fprintf(stderr, "vztrace: error: %s\n", message.c_str());
    return static_cast<int>(code);
}

int read_trace(const std::string& path, format::CallVisitor& visitor,
               format::CallReadResult& read) {
    read = format::read_calls(path, visitor);
    if (read.status == format::CallReadResult::Status::kUnreadable)
        return fail(ExitCode::kNoTrace, read.error);
    if (read.status == format::CallReadResult::Status::kNoReader)
        return fail(ExitCode::kUsage, read.error);  // as view without its server module
    if (read.status != format::CallReadResult::Status::kOk)
        return fail(ExitCode::kBadTrace, read.error);
    if (read.truncated) {
        std::fprintf(stderr,
                     "vztrace: warning: %s stops inside a packet (its writer was killed): what "
                     "was written is read\n",
                     path.c_str());
    }
    return 0;
}

void add_trace_arguments(CLI::App& app, std::string& trace) {
    app.set_help_flag("-h,--help", "Print this help and exit");
    app.add_option("trace", trace,
                   "The trace: vztrace's .pftrace, .json or .json.gz, or VizTracer's JSON")
        ->required()
        ->type_name("TRACE");
}

int parse_subcommand(CLI::App& app, const std::string& name, std::span<const std::string> args) {
    std::vector<std::string> argv = {"vztrace " + name};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<const char*> raw;
    for (const std::string& arg : argv) raw.push_back(arg.c_str());
    try {
        app.parse(static_cast<int>(raw.size()), raw.data());
    } catch (const CLI::CallForHelp&) {
        std::fputs(app.help().c_str(), stdout);  // stdout ok: no program runs here
        return 0;
    } catch (const CLI::ParseError& error) {
        return fail(ExitCode::kUsage, fmt::format("{}: {}", name, error.what()));
    }
    return -1;
}

bool compile_match(const std::string& text, const std::string& command, std::regex& match,
                   int& status) {
    if (text.empty()) return true;
    try {
        match = std::regex(text, std::regex::ECMAScript | std::regex::optimize);
        return true;
    } catch (const std::regex_error& error) {
        status =
            fail(ExitCode::kUsage, fmt::format("{}: --match '{}' is not a regular expression ({})",
                                               command, text, error.what()));
        return false;
    }
}

// The after-run subcommands run no program: their output is theirs to write.
void warn_left_out(std::string_view command, const std::string& trace,
                   const format::CallReadResult& read) {
    std::vector<std::string> parts;
    const auto count = [&parts](std::uint64_t n, std::string_view one, std::string_view many) {
        if (n > 0) parts.push_back(fmt::format("{} {}", n, n == 1 ? one : many));
    };
    count(read.instants, "instant", "instants");
    count(read.counter_values, "counter value", "counter values");
    if (read.calls_with_args > 0) {
        parts.push_back(fmt::format("the arguments or results of {} call{}", read.calls_with_args,
                                    read.calls_with_args == 1 ? "" : "s"));
    }
    if (parts.empty()) return;
    std::string list = parts[0];
    for (std::size_t i = 1; i < parts.size(); ++i)
        list += (i + 1 == parts.size() ? " and " : ", ") + parts[i];
    std::fprintf(stderr, "vztrace: warning: %s carries calls alone; left out of %s: %s\n",
                 std::string(command).c_str(), trace.c_str(), list.c_str());
}

int finish_output(const std::string& out) {
    // Past stdio's buffer fwrite itself fails (a full disk, a reader gone), and the flush
    // after it has nothing left to fail on: both are checked.
    errno = 0;
    const bool written = std::fwrite(out.data(), 1, out.size(), stdout) == out.size();  // stdout ok
    if (std::fflush(stdout) != 0 || !written || std::ferror(stdout)) {                  // stdout ok
        const int error = errno;
        return fail(ExitCode::kTraceNotWritten,
                    error != 0 ? fmt::format("cannot write the output: {}", std::strerror(error))
                               : std::string("cannot write the output"));
    }
    return 0;
}

std::string json_string(std::string_view text) {
    std::string out;
    format::append_json_string(out, text);
    return out;
}

double percent(std::int64_t part, std::int64_t whole) {
    return whole <= 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

double ms(std::int64_t ns) { return static_cast<double>(ns) / 1e6; }
double us(std::int64_t ns) { return static_cast<double>(ns) / 1e3; }

// Columns left for names: the terminal's width when stdout is one, else $COLUMNS, else
// no limit (a file or a CI log keeps whole names).
std::size_t name_width(std::size_t used) {
    std::size_t columns = 0;
    winsize size{};
    if (::isatty(STDOUT_FILENO) && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0) {
        columns = size.ws_col;
    } else if (const char* env = std::getenv("COLUMNS")) {
        columns = static_cast<std::size_t>(std::max(0L, std::atol(env)));
    }
    if (columns == 0) return 0;
    return columns > used + 20 ? columns - used : 20;
}

// Keeps the start (the function) and the end (file and line) of a long name.
std::string fitted(const std::string& name, std::size_t width) {
    if (width == 0 || name.size() <= width) return name;
    const std::size_t head = (width - 3) / 2;
    const std::size_t tail = width - 3 - head;
    return name.substr(0, head) + "..." + name.substr(name.size() - tail);
}

std::string markdown_cell(const std::string& text) {
    std::string out;
    for (const char c : text) {
        if (c == '|') out += '\\';
        out += c;
    }
    return out;
}

}  // namespace vztrace::launcher
