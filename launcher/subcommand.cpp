#include "launcher/subcommand.hpp"

#include <fmt/format.h>

#include <cstdio>
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

int parse_subcommand(CLI::App& app, const std::string& name, std::span<const std::string> args) {
    std::vector<std::string> argv = {"vztrace " + name};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<const char*> raw;
    for (const std::string& arg : argv) raw.push_back(arg.c_str());
    try {
        app.parse(static_cast<int>(raw.size()), raw.data());
    } catch (const CLI::CallForHelp&) {
        std::fputs(app.help().c_str(), stdout);
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

int finish_output(const std::string& out) {
    std::fwrite(out.data(), 1, out.size(), stdout);
    if (std::fflush(stdout) != 0)
        return fail(ExitCode::kTraceNotWritten, "cannot write the output");
    return 0;
}

std::string json_string(std::string_view text) {
    std::string out;
    format::append_json_string(out, text);
    return out;
}

}  // namespace vztrace::launcher
