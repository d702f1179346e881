#include "launcher/subcommand.hpp"

#include <fmt/format.h>
#include <re2/re2.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "launcher/command_line.hpp"
#include "tracer/format/chrome_json.hpp"
#include "tracer/one_line.hpp"

namespace vztrace::launcher {

int fail(ExitCode code, const std::string& message) {
    std::fprintf(stderr, "vztrace: error: %s\n", tracer::one_line(message).c_str());
    return static_cast<int>(code);
}

int read_trace(const std::string& path, format::CallVisitor& visitor, format::CallReadResult& read,
               Warn warn) {
    read = format::read_calls(path, visitor);
    if (read.status == format::CallReadResult::Status::kUnreadable)
        return fail(ExitCode::kNoTrace, read.error);
    if (read.status == format::CallReadResult::Status::kNoReader)
        return fail(ExitCode::kUsage, read.error);  // as view without its server module
    if (read.status != format::CallReadResult::Status::kOk)
        return fail(ExitCode::kBadTrace, read.error);
    if (warn != Warn::kLater) warn_about_read(path, read, warn == Warn::kAll);
    return 0;
}

void warn_about_read(const std::string& path, const format::CallReadResult& read, bool gaps) {
    if (read.truncated) {
        std::fprintf(stderr,
                     "vztrace: warning: %s stops inside a packet (its writer was killed): what "
                     "was written is read\n",
                     tracer::one_line(path).c_str());
    } else if (read.calls_left_open > 0) {
        std::fprintf(
            stderr,
            "vztrace: warning: %s ends with %llu call%s never ended (its writer was "
            "killed?): %s read as ending at their thread's last event\n",
            tracer::one_line(path).c_str(), static_cast<unsigned long long>(read.calls_left_open),
            read.calls_left_open == 1 ? "" : "s", read.calls_left_open == 1 ? "it is" : "they are");
    } else if (read.ends_early) {
        std::fprintf(stderr,
                     "vztrace: warning: %s stops before the metadata that ends a recording's "
                     "trace (cut short, or its writer was killed): what was written is read\n",
                     tracer::one_line(path).c_str());
    }
    for (const format::RecordingGap& gap : format::recording_gaps(read)) {
        if (!gaps) break;
        if (gap.warning) {
            std::fprintf(stderr, "vztrace: warning: %s is incomplete: %s\n",
                         tracer::one_line(path).c_str(), tracer::one_line(gap.text).c_str());
        } else {
            std::fprintf(stderr, "vztrace: %s: %s\n", tracer::one_line(path).c_str(),
                         tracer::one_line(gap.text).c_str());
        }
    }
}

namespace {

char g_removed_on_termination[PATH_MAX] = {};

void remove_and_die(int signum) {
    ::unlink(g_removed_on_termination);  // async-signal-safe, as all of this
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    sigaction(signum, &action, nullptr);
    ::raise(signum);  // delivered when the handler returns: the signal is unblocked then
}

}  // namespace

void remove_on_termination(const tracer::OutputFile& out) {
    const std::string& path = out.temporary_path();
    if (path.empty() || path == out.path() || path.size() >= sizeof g_removed_on_termination) {
        return;  // written in place (a device), or nothing to remove
    }
    std::memcpy(g_removed_on_termination, path.c_str(), path.size() + 1);
    struct sigaction action {};
    action.sa_handler = remove_and_die;
    sigemptyset(&action.sa_mask);
    for (const int signum : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&action.sa_mask, signum);
    for (const int signum : {SIGINT, SIGTERM, SIGHUP}) {
        struct sigaction current {};
        // A signal the caller ignores (nohup) stays ignored.
        if (sigaction(signum, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) continue;
        sigaction(signum, &action, nullptr);
    }
    signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG: one line, exit 74
}

int refuse_output_over_input(std::string_view command, const std::string& output,
                             std::span<const std::string> inputs) {
    struct stat out {};
    if (::stat(output.c_str(), &out) != 0) return 0;
    for (const std::string& input : inputs) {
        struct stat in {};
        if (::stat(input.c_str(), &in) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino) {
            return fail(ExitCode::kUsage,
                        fmt::format("{}: the output {} is the trace {} itself: name another file",
                                    command, output, input));
        }
    }
    return 0;
}

NameMatch::NameMatch() = default;
NameMatch::~NameMatch() = default;

bool NameMatch::compile(const std::string& text, std::string_view command, int& status) {
    pattern_.reset();
    if (text.empty()) return true;
    re2::RE2::Options options;
    options.set_log_errors(false);  // RE2 would log to stderr: the one line is ours
    auto pattern = std::make_unique<re2::RE2>(text, options);
    if (!pattern->ok()) {
        status =
            fail(ExitCode::kUsage, fmt::format("{}: --match '{}' is not a regular expression ({})",
                                               command, text, pattern->error()));
        return false;
    }
    pattern_ = std::move(pattern);
    return true;
}

bool NameMatch::operator()(std::string_view name) const {
    return pattern_ == nullptr || re2::RE2::PartialMatch(name, *pattern_);
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
    count(read.other_events, "event of another kind (an object's, an async slice, a flow...)",
          "events of other kinds (objects', async slices, flows...)");
    if (read.calls_with_args > 0) {
        parts.push_back(fmt::format("the arguments or results of {} call{}", read.calls_with_args,
                                    read.calls_with_args == 1 ? "" : "s"));
    }
    if (parts.empty()) return;
    std::string list = parts[0];
    for (std::size_t i = 1; i < parts.size(); ++i)
        list += (i + 1 == parts.size() ? " and " : ", ") + parts[i];
    std::fprintf(stderr, "vztrace: warning: %s carries calls alone; left out of %s: %s\n",
                 std::string(command).c_str(), tracer::one_line(trace).c_str(), list.c_str());
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
namespace {

// One character of a name: its bytes (a whole UTF-8 sequence, or one byte that is not
// one) and the columns a terminal gives it.
struct Glyph {
    std::size_t begin;
    std::size_t size;
    std::size_t columns;
};

// Columns of a code point: 2 for the wide (East Asian) ones and emoji, 0 for combining
// marks, else 1; enough to keep a table's columns straight without the locale's wcwidth.
std::size_t columns_of(char32_t c) {
    if ((c >= 0x0300 && c <= 0x036F) || (c >= 0x200B && c <= 0x200F) || c == 0xFE0F) return 0;
    const bool wide = (c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0xA4CF) ||
                      (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) ||
                      (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
                      (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x1F300 && c <= 0x1F64F) ||
                      (c >= 0x1F900 && c <= 0x1F9FF) || (c >= 0x20000 && c <= 0x3FFFD);
    return wide ? 2 : 1;
}

std::vector<Glyph> glyphs_of(std::string_view text) {
    std::vector<Glyph> glyphs;
    std::size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<unsigned char>(text[i]);
        const std::size_t size = lead < 0x80             ? 1
                                 : (lead & 0xE0) == 0xC0 ? 2
                                 : (lead & 0xF0) == 0xE0 ? 3
                                 : (lead & 0xF8) == 0xF0 ? 4
                                                         : 0;
        bool whole = size > 0 && i + size <= text.size();
        char32_t c = size == 1   ? lead
                     : size == 2 ? lead & 0x1F
                     : size == 3 ? lead & 0x0F
                                 : lead & 7;
        for (std::size_t k = 1; whole && k < size; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            whole = (next & 0xC0) == 0x80;
            c = (c << 6) | (next & 0x3F);
        }
        if (!whole) {  // not UTF-8: the byte alone, one column (the terminal shows one)
            glyphs.push_back(Glyph{i, 1, 1});
            ++i;
            continue;
        }
        glyphs.push_back(Glyph{i, size, columns_of(c)});
        i += size;
    }
    return glyphs;
}

}  // namespace

std::string fitted(const std::string& name, std::size_t width) {
    // Control characters (a newline in a file's name) would break the table's lines.
    std::string text = tracer::one_line(name);
    if (width == 0) return text;
    const std::vector<Glyph> glyphs = glyphs_of(text);
    std::size_t columns = 0;
    for (const Glyph& g : glyphs) columns += g.columns;
    if (columns <= width) return text;
    // The start and the end kept, whole characters only, "..." between.
    const std::size_t room = width > 3 ? width - 3 : 0;
    const std::size_t head_room = room / 2;
    std::size_t head = 0;  // bytes
    std::size_t used = 0;
    for (const Glyph& g : glyphs) {
        if (used + g.columns > head_room) break;
        used += g.columns;
        head = g.begin + g.size;
    }
    std::size_t tail = text.size();  // where the kept end begins
    std::size_t tail_used = 0;
    for (auto g = glyphs.rbegin(); g != glyphs.rend(); ++g) {
        if (used + tail_used + g->columns > room) break;
        tail_used += g->columns;
        tail = g->begin;
    }
    return text.substr(0, head) + "..." + text.substr(tail);
}

std::string markdown_cell(const std::string& text) {
    // Control characters shown escaped, as in the text tables (a NUL or an escape sequence
    // in a name went into the markdown as it was). What markdown would make a link, an
    // image, HTML, emphasis or a cell's end of (a thread named "[x](https://...)" was a
    // link in a pull request's comment) is escaped with a backslash.
    constexpr std::string_view kMarkup = "\\`*_[]<>!|#~&";
    std::string out;
    for (const char c : fitted(text, 0)) {
        if (kMarkup.find(c) != std::string_view::npos) out += '\\';
        out += c;
    }
    return out;
}

std::string markdown_code(const std::string& text) {
    // A code span is fenced by more backticks than any run inside it, with a space
    // between when the text starts or ends with one.
    std::size_t longest = 0;
    std::size_t run = 0;
    for (const char c : text) {
        run = c == '`' ? run + 1 : 0;
        longest = std::max(longest, run);
    }
    const std::string fence(longest + 1, '`');
    const bool pad = !text.empty() && (text.front() == '`' || text.back() == '`');
    // Within a table, '|' ends the cell even in a code span (GitHub's tables): escaped
    // there, as nothing else in a span can be.
    std::string inner;
    for (const char c : fitted(text, 0)) {
        if (c == '|') inner += '\\';
        inner += c;
    }
    return pad ? fence + " " + inner + " " + fence : fence + inner + fence;
}

}  // namespace vztrace::launcher
