// ChromeJsonWriter: a Capture as Chrome Trace Event JSON (complete "X" events, "M" process
// and thread names, and a vztrace_metadata object). Opens in ui.perfetto.dev,
// chrome://tracing and VizTracer's vizviewer.
#pragma once

#include <cstdint>
#include <string>

#include "tracer/capture.hpp"
#include "tracer/output_file.hpp"

namespace vztrace::tracer {

struct WriteStats {
    std::uint64_t slices = 0;
    std::uint64_t unfinished = 0;
    std::uint64_t bytes = 0;
    double seconds = 0;  // time spent formatting and writing the events
};

// Appends `text` to `out` as a JSON string literal, quotes included.
void append_json_string(std::string& out, std::string_view text);

class ChromeJsonWriter {
 public:
    // Writes the whole trace to `file` and commits it. On failure returns false and
    // file.error() says why; `stats` is filled either way.
    bool write(const Capture& capture, OutputFile& file, WriteStats& stats);
};

}  // namespace vztrace::tracer
