// A process's part of a process-tree trace. Each traced process streams its Perfetto
// packets into `<pid>-<nonce>.pftrace` in the private parts directory while it runs; when
// it ends, it leaves `<pid>-<nonce>.part`, the summary that says its stream is whole and
// what it holds. A stream with no summary belongs to a process that was killed: its whole
// packets are kept and its open calls closed (see process_tree.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "tracer/trace_writer.hpp"

namespace vztrace::tracer {

struct ProcessSummary {
    std::int64_t pid = 0;
    StreamCounts counts;
    bool memory_limit_reached = false;  // recording waited for the writer
    std::uint64_t subinterpreters = 0;  // created by the program: their calls are not recorded
};

// Writes the summary at `path` (through a temporary name, so a reader sees all or none).
bool write_summary(const std::string& path, const ProcessSummary& summary, std::string& error);

// Reads a summary back; nullopt with `error` set when the file is not a whole one.
std::optional<ProcessSummary> read_summary(const std::string& path, std::string& error);

}  // namespace vztrace::tracer
