// vztrace's entry point: parse the command line, then hand python's argv to embed/.
#include <fmt/format.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "embed/interpreter.hpp"
#include "embed/setup_error.hpp"
#include "launcher/command_line.hpp"

namespace {

// The output path is fixed before the program runs: it may chdir, and an unwritable
// directory is better reported now than after an hour of tracing.
std::string resolve_output(const std::string& output) {
    std::string path = output;
    if (path[0] != '/') {
        char cwd[PATH_MAX];
        if (::getcwd(cwd, sizeof cwd) == nullptr) {
            throw vztrace::SetupError(vztrace::ExitCode::kUsage,
                                      "cannot resolve the output path: the current directory is gone");
        }
        path = fmt::format("{}/{}", cwd, path);
    }
    const std::string dir = path.substr(0, path.find_last_of('/') + 1);
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
        throw vztrace::SetupError(vztrace::ExitCode::kUsage,
                                  fmt::format("cannot write '{}': the directory '{}' is missing "
                                              "or not writable",
                                              output, dir));
    }
    return path;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::vector<std::string> args(argv, argv + argc);
        vztrace::launcher::Invocation invocation = vztrace::launcher::parse_command_line(args);
        switch (invocation.action) {
            case vztrace::launcher::Invocation::Action::kHelp:
                std::fputs(invocation.help.c_str(), stdout);  // stdout ok: nothing is traced
                return 0;
            case vztrace::launcher::Invocation::Action::kVersion:
                std::fputs(fmt::format("vztrace {}\n{}\n", VZTRACE_VERSION,  // stdout ok
                                       vztrace::embed::describe_python())
                               .c_str(),
                           stdout);  // stdout ok: nothing is traced
                return 0;
            case vztrace::launcher::Invocation::Action::kRun:
                break;
        }
        invocation.trace.output = resolve_output(invocation.trace.output);
        vztrace::embed::RunRequest request{argv[0], std::move(invocation.python_argv),
                                           std::move(invocation.process_name),
                                           std::move(invocation.trace)};
        return vztrace::embed::run_program(request);
    } catch (const vztrace::SetupError& error) {
        std::fprintf(stderr, "vztrace: error: %s\n", error.what());
        return static_cast<int>(error.code());
    }
}
