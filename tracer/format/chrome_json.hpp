// ChromeJsonEncoder: Perfetto streams as Chrome Trace Event JSON (complete "X" events,
// "M" process and thread names, and a vztrace_metadata object), for chrome://tracing,
// VizTracer's vizviewer and any tool that reads JSON. Written from the same streams the
// recording produced, a stream at a time: memory is that of the open calls.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tracer/format/perfetto_reader.hpp"

namespace vztrace::format {

// Appends `text` to `out` as a JSON string literal, quotes included; bytes that are not
// UTF-8 become U+FFFD.
void append_json_string(std::string& out, std::string_view text);

// A time in microseconds with nanosecond digits, as the JSON traces write it: -500 ns is
// "-0.500".
std::string micros_text(std::int64_t ns);

// `text` with each byte that is not part of well-formed UTF-8 replaced by U+FFFD.
std::string valid_utf8(std::string_view text);

class ChromeJsonEncoder {
 public:
    // `write` takes the document's bytes in order; false stops the encoder.
    explicit ChromeJsonEncoder(std::function<bool(std::string_view)> write);

    // Every slice of the Perfetto trace at `path` (read from `fd` when one is given, `path`
    // then naming it in messages). A stream cut short (`cut_short_ok`: a process that was
    // killed) keeps what it holds whole, its open calls ended at their last event and
    // flagged. False with error() on a damaged or unreadable stream, or when writing failed.
    bool add_stream(const std::string& path, bool cut_short_ok, int fd = -1);

    // Ends the document with `metadata` (keys and JSON values, written as they are).
    bool finish(const std::vector<std::pair<std::string, std::string>>& metadata);

    // The calls written: slices on threads' tracks, not a named track's (a task's steps).
    std::uint64_t slices() const { return slices_; }
    std::uint64_t unfinished() const { return unfinished_; }
    const std::string& error() const { return error_; }

 private:
    bool flush(bool force);
    // `args` as JSON members (string values), after a comma unless `first`.
    void append_args(const std::vector<std::pair<std::string, std::string>>& args, bool first);

    std::function<bool(std::string_view)> write_;
    std::string buffer_;
    std::uint64_t slices_ = 0;
    std::uint64_t unfinished_ = 0;
    bool first_event_ = true;
    bool failed_ = false;
    std::string error_;
    NamedTrackTids track_tids_;  // over every stream: an image's tracks, then the next's
};

}  // namespace vztrace::format
