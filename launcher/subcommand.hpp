// What the subcommands that read traces share: their messages and exit statuses
// (embed/setup_error.hpp), and reading a trace (their command lines:
// subcommand_options.hpp). No Python.h.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "embed/setup_error.hpp"
#include "tracer/format/call_reader.hpp"
#include "tracer/output_file.hpp"

namespace re2 {
class RE2;
}

namespace vztrace::launcher {

// One line on stderr ("vztrace: error: ..."); returns `code` as an exit status.
int fail(ExitCode code, const std::string& message);

// Reads `path` into `visitor`; 0, or the exit status after one line on stderr. A trace cut
// short (a killed writer) is read to where it stops, with a warning, and what the recorder
// says the trace lacks (format::recording_gaps) is a line each (warn_about_read): at once;
// or not the latter, which the caller puts in its own output (report); or later, once the
// caller knows it will not fail on another input (combine, diff: an error is one line).
enum class Warn { kAll, kNotGaps, kLater };
int read_trace(const std::string& path, format::CallVisitor& visitor, format::CallReadResult& read,
               Warn warn = Warn::kAll);
void warn_about_read(const std::string& path, const format::CallReadResult& read, bool gaps = true);

// export and combine carry calls alone: a warning on stderr names what `read` of `trace`
// held besides them (instants, counter values, calls' arguments and results), if anything.
void warn_left_out(std::string_view command, const std::string& trace,
                   const format::CallReadResult& read);

// --match: the functions whose name holds a match of a regular expression, in RE2's syntax
// (Perl's, less backreferences and lookaround). RE2 matches in time linear in the name and
// without recursion: std::regex overflowed the stack on names of some 20,000 characters,
// which a program's generated code can have.
class NameMatch {
 public:
    NameMatch();
    ~NameMatch();
    NameMatch(const NameMatch&) = delete;
    NameMatch& operator=(const NameMatch&) = delete;

    // false, with `status` set after one line on stderr, when `text` is not a regular
    // expression. An empty `text` matches every name.
    bool compile(const std::string& text, std::string_view command, int& status);
    bool operator()(std::string_view name) const;

 private:
    std::unique_ptr<re2::RE2> pattern_;
};

// export and combine: when `output` is one of `inputs` (the same file, by any name), one
// line and the status to exit with (written, the input would be replaced by what was read
// of it, its metadata gone); else 0.
int refuse_output_over_input(std::string_view command, const std::string& output,
                             std::span<const std::string> inputs);

// export and combine, while they write `out` under its temporary name: SIGINT, SIGTERM and
// SIGHUP remove it before the process dies of the signal, and a file-size limit (SIGXFSZ)
// is a write error (exit 74, the temporary file removed) instead of a kill.
void remove_on_termination(const tracer::OutputFile& out);

// Writes `out` to stdout; 0, or 74 when it cannot be written.
int finish_output(const std::string& out);

std::string json_string(std::string_view text);

// Tables: percentages, milliseconds and microseconds of nanoseconds.
double percent(std::int64_t part, std::int64_t whole);
double ms(std::int64_t ns);
double us(std::int64_t ns);
// Columns left for names after `used`: the terminal's width when stdout is one, else
// $COLUMNS, else 0 (no limit: a file or a CI log keeps whole names).
std::size_t name_width(std::size_t used);
// A name cut to `width` columns (0: whole), its start and end kept, never inside a UTF-8
// character; control characters are shown escaped (\n).
std::string fitted(const std::string& name, std::size_t width);
// Text for a markdown table cell.
std::string markdown_cell(const std::string& text);
// Text for a markdown table cell as code: fenced so that backticks in it stay its own.
std::string markdown_code(const std::string& text);

}  // namespace vztrace::launcher
