// What the subcommands that read traces share: their command lines, messages and exit
// statuses (embed/setup_error.hpp), and reading a trace. No Python.h.
#pragma once

#include <CLI/CLI.hpp>
#include <regex>
#include <span>
#include <string>
#include <string_view>

#include "embed/setup_error.hpp"
#include "tracer/format/call_reader.hpp"

namespace vztrace::launcher {

// One line on stderr ("vztrace: error: ..."); returns `code` as an exit status.
int fail(ExitCode code, const std::string& message);

// Reads `path` into `visitor`; 0, or the exit status after one line on stderr. A trace cut
// short (a killed writer) is read to where it stops, with a warning.
int read_trace(const std::string& path, format::CallVisitor& visitor,
               format::CallReadResult& read);

// Parses a subcommand's arguments; -1 to go on, else the status to exit with (0 after
// --help).
int parse_subcommand(CLI::App& app, const std::string& name, std::span<const std::string> args);

// --match: false (with `status` set) when `text` is not a regular expression.
bool compile_match(const std::string& text, const std::string& command, std::regex& match,
                   int& status);

// Writes `out` to stdout; 0, or 74 when it cannot be written.
int finish_output(const std::string& out);

std::string json_string(std::string_view text);

}  // namespace vztrace::launcher
