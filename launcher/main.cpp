// vztrace's entry point: parse the command line, then hand python's argv to embed/.
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "embed/interpreter.hpp"
#include "embed/setup_error.hpp"
#include "launcher/command_line.hpp"
#include "launcher/export.hpp"
#include "launcher/report.hpp"
#include "launcher/view.hpp"
#include "tracer/root_registry.hpp"

int main(int argc, char** argv) {
    try {
        const std::vector<std::string> args(argv, argv + argc);
        // Subcommands that read a trace after the run (a script named so: ./report).
        if (args.size() >= 2 && args[1] == "report") {
            return vztrace::launcher::run_report(std::span(args).subspan(2));
        }
        if (args.size() >= 2 && args[1] == "diff") {
            return vztrace::launcher::run_diff(std::span(args).subspan(2));
        }
        if (args.size() >= 2 && args[1] == "export") {
            return vztrace::launcher::run_export(std::span(args).subspan(2));
        }
        if (args.size() >= 2 && args[1] == "combine") {
            return vztrace::launcher::run_combine(std::span(args).subspan(2));
        }
        if (args.size() >= 2 && args[1] == "view") {
            return vztrace::launcher::run_view(std::span(args).subspan(2));
        }
        // A vztrace the program started with an environment of its own still belongs to
        // the traced tree it runs in: its settings come from the nearest root above it.
        vztrace::tracer::adopt_ancestor_root(vztrace::tracer::default_registry_dir());
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
        vztrace::embed::RunRequest request{argv[0], std::move(invocation.python_argv),
                                           std::move(invocation.process_name),
                                           std::move(invocation.trace)};
        return vztrace::embed::run_program(request);
    } catch (const vztrace::SetupError& error) {
        std::fprintf(stderr, "vztrace: error: %s\n", error.what());
        return static_cast<int>(error.code());
    }
}
