#include "launcher/export.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <unordered_map>
#include <vector>

#include "launcher/subcommand.hpp"
#include "launcher/subcommand_options.hpp"
#include "tracer/format/call_writers.hpp"
#include "tracer/output_file.hpp"

namespace vztrace::launcher {
namespace {

bool ends_with(std::string_view text, std::string_view suffix) {
    return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

}  // namespace

int run_export(std::span<const std::string> args) {
    ExportOptions options;
    if (const int status = parse_export(args, options); status >= 0) return status;
    const auto& [trace, output] = options;
    enum class Kind { kPerfetto, kJson, kSpeedscope, kFolded, kPstats };
    Kind kind;
    if (ends_with(output, ".pftrace") || ends_with(output, ".perfetto-trace")) {
        kind = Kind::kPerfetto;
    } else if (ends_with(output, ".speedscope.json")) {
        kind = Kind::kSpeedscope;
    } else if (ends_with(output, ".json") || ends_with(output, ".json.gz")) {
        kind = Kind::kJson;
    } else if (ends_with(output, ".folded")) {
        kind = Kind::kFolded;
    } else if (ends_with(output, ".pstats") || ends_with(output, ".prof")) {
        kind = Kind::kPstats;
    } else {
        return fail(ExitCode::kUsage,
                    fmt::format("export: cannot tell the format of '{}': name it with one of {}",
                                output, kExportFormats));
    }
    if (const int refused = refuse_output_over_input("export", output, std::span(&trace, 1))) {
        return refused;
    }
    // The collapsed stacks and pstats are summed as the trace is read; the other formats
    // need its calls kept whole.
    format::CallLog calls;
    format::FoldedStacks folded;
    format::ProfileStats pstats;
    format::CallVisitor* reader = &calls;
    if (kind == Kind::kFolded) reader = &folded;
    if (kind == Kind::kPstats) reader = &pstats;
    format::CallReadResult read;
    // What the trace lacks is said once it is known to be exported (an error is one line).
    if (const int error = read_trace(trace, *reader, read, Warn::kLater); error != 0) return error;
    if (kind == Kind::kPstats && pstats.empty()) {
        // pstats.Stats refuses an empty profile ("Cannot create or construct"): a file it
        // cannot load is no export.
        return fail(ExitCode::kBadTrace,
                    fmt::format("export: {} holds no calls: a .pstats file of none would not "
                                "load in pstats",
                                trace));
    }
    warn_about_read(trace, read);
    tracer::OutputFile out(output);
    if (!out.ok()) return fail(ExitCode::kTraceNotWritten, out.error());
    remove_on_termination(out);
    const format::WriteBytes writer = [&out](std::string_view bytes) { return out.write(bytes); };
    bool ok = false;
    switch (kind) {
        case Kind::kPerfetto: {
            const format::CallSource source{&calls, 0};
            const std::pair<std::string, std::string> from[] = {{"vztrace.exported_from", trace}};
            ok = format::write_perfetto(std::span(&source, 1), from, read.realtime_offset_ns,
                                        writer);
            break;
        }
        case Kind::kJson: {
            const std::pair<std::string, std::string> from[] = {{"exported_from", trace}};
            ok = format::write_json(calls, from, writer);
            break;
        }
        case Kind::kSpeedscope:
            ok = format::write_speedscope(calls, trace, writer);
            break;
        case Kind::kFolded:
            ok = folded.write(writer);
            break;
        case Kind::kPstats:
            ok = pstats.write(writer);
            break;
    }
    if (!ok || !out.commit()) {
        out.discard();
        return fail(ExitCode::kTraceNotWritten, out.error());
    }
    warn_left_out("export", trace, read);
    return 0;
}

}  // namespace vztrace::launcher
