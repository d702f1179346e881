#include "tracer/part_file.hpp"

#include <fmt/format.h>

#include <fstream>
#include <map>
#include <sstream>

#include "tracer/output_file.hpp"

namespace vztrace::tracer {
namespace {

constexpr std::string_view kMagic = "VZTRACE-PART-2";

}  // namespace

bool write_summary(const std::string& path, const ProcessSummary& summary, std::string& error) {
    const StreamCounts& c = summary.counts;
    const std::string text = fmt::format(
        "{}\npid {}\nevents {}\ncalls {}\nunfinished {}\nnot_recorded {}\nbytes {}\n"
        "size_cap_reached {}\nmemory_limit_reached {}\noverwritten {}\nsubinterpreters {}\n"
        "memory_refused {}\nend\n",
        kMagic, summary.pid, c.events, c.calls, c.unfinished, c.not_recorded, c.bytes,
        c.size_cap_reached ? 1 : 0, summary.memory_limit_reached ? 1 : 0, c.overwritten,
        summary.subinterpreters, c.memory_refused ? 1 : 0);
    OutputFile file(path);
    if (!file.ok() || !file.write(text) || !file.commit()) {
        error = file.error();
        return false;
    }
    return true;
}

std::optional<ProcessSummary> read_summary(const std::string& path, std::string& error) {
    std::ifstream file(path);
    std::string line;
    if (!std::getline(file, line) || line != kMagic) {
        error = "damaged part summary " + path;
        return std::nullopt;
    }
    std::map<std::string, std::uint64_t> values;
    bool ended = false;
    while (std::getline(file, line)) {
        if (line == "end") {
            ended = true;
            break;
        }
        std::istringstream fields(line);
        std::string key;
        std::uint64_t value = 0;
        if (fields >> key >> value) values[key] = value;
    }
    if (!ended || values.count("pid") == 0) {
        error = "incomplete part summary " + path;
        return std::nullopt;
    }
    ProcessSummary summary;
    summary.pid = static_cast<std::int64_t>(values["pid"]);
    summary.counts.events = values["events"];
    summary.counts.calls = values["calls"];
    summary.counts.unfinished = values["unfinished"];
    summary.counts.not_recorded = values["not_recorded"];
    summary.counts.bytes = values["bytes"];
    summary.counts.size_cap_reached = values["size_cap_reached"] != 0;
    summary.counts.memory_refused = values["memory_refused"] != 0;
    summary.memory_limit_reached = values["memory_limit_reached"] != 0;
    summary.counts.overwritten = values["overwritten"];
    summary.subinterpreters = values["subinterpreters"];
    return summary;
}

}  // namespace vztrace::tracer
