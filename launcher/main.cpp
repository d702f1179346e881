// vztrace's entry point: parse the command line, then hand python's argv to embed/.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "embed/interpreter.hpp"
#include "embed/setup_error.hpp"
#include "launcher/command_line.hpp"
#include "launcher/export.hpp"
#include "launcher/report.hpp"
#include "launcher/view.hpp"
#include "tracer/one_line.hpp"
#include "tracer/root_registry.hpp"
#include "tracer/terminating_signals.hpp"

int main(int argc, char** argv) {
    // Held across the exec by an earlier image of this process, a recording root's: a run
    // lets them go once its handlers are in place, anything else at once.
    const bool signals_held = vztrace::tracer::signals::taken_from_earlier_image();
    try {
        const std::vector<std::string> args(argv, argv + argc);
        struct LetGo {
            bool held;
            void now() {
                if (held) vztrace::tracer::signals::let_go_after_exec();
                held = false;
            }
            ~LetGo() { now(); }
        } let_go{signals_held};
        // Subcommands that read a trace after the run (a script named so: ./report; in a
        // traced tree, a script of that name runs as under python).
        const std::string command =
            args.size() >= 2 && !vztrace::launcher::python_script_named(args[1]) ? args[1] : "";
        const auto rest = std::span(args).subspan(std::min<std::size_t>(2, args.size()));
        using Subcommand = int (*)(std::span<const std::string>);
        constexpr std::pair<std::string_view, Subcommand> kSubcommands[] = {
            {"report", vztrace::launcher::run_report},
            {"diff", vztrace::launcher::run_diff},
            {"export", vztrace::launcher::run_export},
            {"combine", vztrace::launcher::run_combine},
            {"view", vztrace::launcher::run_view}};
        for (const auto& [name, run] : kSubcommands) {
            if (command != name) continue;
            let_go.now();  // at once: a view runs until a signal ends it
            return run(rest);
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
                                           std::move(invocation.trace), signals_held};
        let_go.held = false;  // the run lets them go
        return vztrace::embed::run_program(request);
    } catch (const vztrace::SetupError& error) {
        std::fprintf(stderr, "vztrace: error: %s\n",
                     vztrace::tracer::one_line(error.what()).c_str());
        return static_cast<int>(error.code());
    } catch (const std::bad_alloc&) {
        // An after-run tool given a trace larger than the memory the system gives (one it
        // reads whole: JSON, gzipped; a limit on the address space): one line, never
        // SIGABRT. A run handles its own (the program goes on; see tracer/session.cpp).
        std::fputs("vztrace: error: out of memory\n", stderr);
        return static_cast<int>(vztrace::ExitCode::kOutOfMemory);
    }
}
