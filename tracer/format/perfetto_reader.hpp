// PerfettoReader: decodes Perfetto protobuf traces (vztrace's own, and the TrackEvent
// subset other tools write) into slices, instants and tracks. It follows each packet
// sequence's state: interned names and source locations, TracePacketDefaults,
// sequence-scoped incremental clocks, compressed_packets. Times come out as
// CLOCK_MONOTONIC nanoseconds where the trace relates its clocks to it.
//
// Input is fed in pieces of any size (a file read block by block), so memory stays that
// of the open calls, the names and one packet. Damaged input is an error, never a crash;
// input that stops inside a packet (a writer killed mid-write) is reported as truncated.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace vztrace::format {

// JSON and the after-run tools have threads where Perfetto has tracks: a named track with
// slices (an asyncio task's) is a thread of its process with an id of its own, above every
// kernel thread id (Linux's are below 2^22), one a track in the order met (a hash of the
// track's uuid gave two of 100,000 tasks the same). JSON marks such a thread with a
// metadata event of its own (kNamedTrackMark), which no other recorder writes.
class NamedTrackTids {
 public:
    std::int64_t of(std::uint64_t uuid) {
        return tids_.try_emplace(uuid, kFirst + static_cast<std::int64_t>(tids_.size()))
            .first->second;
    }

 private:
    static constexpr std::int64_t kFirst = std::int64_t{1} << 30;
    std::unordered_map<std::uint64_t, std::int64_t> tids_;
};
inline constexpr std::string_view kNamedTrackMark = "vztrace_track";

struct TrackInfo {
    std::uint64_t uuid = 0;
    std::uint64_t parent_uuid = 0;
    std::int64_t pid = 0;
    std::int64_t tid = 0;  // 0 for a process track or a named track
    std::string name;
    bool is_process = false;
    bool is_thread = false;
    bool is_counter = false;
};

using DecodedArgs = std::vector<std::pair<std::string, std::string>>;

struct DecodedSlice {
    std::uint64_t track_uuid = 0;
    std::string_view name;
    std::string_view file;  // from the slice's source location, when it has one
    std::uint32_t line = 0;
    std::int64_t begin_ns = 0;
    std::int64_t end_ns = 0;
    std::uint32_t depth = 0;  // 0: outermost on its track
    bool unfinished = false;
    const DecodedArgs* args = nullptr;  // of the begin and the end, when there are any
};

struct DecodedCounter {
    std::uint64_t track_uuid = 0;
    std::int64_t at_ns = 0;
    double value = 0;
};

struct DecodedInstant {
    std::uint64_t track_uuid = 0;
    std::string_view name;
    std::int64_t at_ns = 0;
    std::vector<std::pair<std::string, std::string>> args;
};

// The state of a call still open when the input ended.
struct OpenCall {
    std::uint64_t track_uuid;
    std::string name;
    std::int64_t begin_ns;
};

class PerfettoReader {
 public:
    std::function<void(const DecodedSlice&)> on_slice;
    // A call begins (its end comes to on_slice): track, name, time.
    std::function<void(std::uint64_t, std::string_view, std::int64_t)> on_begin;
    std::function<void(const DecodedInstant&)> on_instant;
    std::function<void(const DecodedCounter&)> on_counter;
    // A track's descriptor, each time one is read (later ones may rename it).
    std::function<void(const TrackInfo&)> on_track;

    // Feeds the next bytes of the trace. False when the input is damaged (error() says
    // where); bytes of a packet that continues in the next piece are kept.
    bool feed(std::string_view bytes);
    // The input has ended. Calls still open stay open (see open_calls()); returns false
    // when the input stopped inside a packet (truncated() then says so).
    bool finish();
    // Reads a whole file, block by block. False with error() set when it cannot be read,
    // is damaged, or is not a Perfetto trace.
    bool read_file(const std::string& path);
    // The same from an open descriptor (a file, a pipe), after `head`, the first bytes
    // already read from it (-1: `head` is the whole trace); `path` names it in errors. The
    // descriptor stays open.
    bool read_descriptor(int fd, const std::string& path, std::string_view head);

    // Ends every call still open at its track's last event time, flagged unfinished.
    void close_open_calls();

    const std::string& error() const { return error_; }
    bool truncated() const { return truncated_; }
    // A recording's trace whose opening mark no closing metadata follows: it stops between
    // two packets (format::kTraceOpening).
    bool closing_missing() const { return closing_due_; }
    std::uint64_t packets() const { return packets_; }
    std::uint64_t whole_bytes() const { return whole_bytes_; }  // bytes of complete packets
    const std::map<std::uint64_t, TrackInfo>& tracks() const { return tracks_; }
    // Whether `uuid` is a named track with slices (an asyncio task's, whose slices are its
    // steps, not calls) as far as read: vztrace describes one before its first slice.
    bool is_named_track(std::uint64_t uuid) const {
        const auto track = tracks_.find(uuid);
        return track != tracks_.end() && !track->second.is_process && !track->second.is_thread &&
               !track->second.is_counter;
    }
    // Key/value metadata from TraceAttributes packets, in the order read.
    const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }
    std::vector<OpenCall> open_calls() const;
    // CLOCK_REALTIME minus CLOCK_MONOTONIC, from the trace's clock snapshot, if it has one.
    std::optional<std::int64_t> realtime_offset_ns() const;
    // Per packet sequence: the last timestamp on its incremental clock, the open calls'
    // symbols. Used to close a killed process's calls in its own stream.
    struct SequenceEnd {
        std::uint32_t sequence_id;
        std::uint64_t track_uuid;
        std::int64_t last_ns;
        std::size_t open_calls;  // its slices still open (on a named track: steps, not calls)
        bool named_track;
    };
    std::vector<SequenceEnd> sequence_ends() const;

 private:
    struct Clock {
        std::int64_t value = 0;  // in the clock's own units, after the last delta
        std::int64_t base_value = 0;
        std::int64_t base_monotonic = 0;
        std::int64_t unit_ns = 1;
        bool incremental = false;
    };
    struct SourceLocation {
        std::string file;
        std::uint32_t line = 0;
    };
    struct OpenSlice {
        std::string_view name;  // into names_
        const SourceLocation* location = nullptr;
        std::int64_t begin_ns;
        bool unfinished;
        DecodedArgs args;
    };
    struct Sequence {
        // Views into the reader's arenas, which outlive every open call.
        std::unordered_map<std::uint64_t, std::string_view> names;
        std::unordered_map<std::uint64_t, const SourceLocation*> locations;
        std::unordered_map<std::uint64_t, std::string_view> annotation_names;
        std::unordered_map<std::uint32_t, Clock> clocks;
        std::uint32_t default_clock = 0;  // 0: none given
        std::uint64_t default_track = 0;
        std::int64_t last_ns = 0;
    };
    struct TrackState {
        std::vector<OpenSlice> open;
        std::int64_t last_ns = 0;
        std::uint32_t sequence_id = 0;
    };

    bool packet(std::string_view bytes);
    bool track_event(Sequence& sequence, std::uint32_t sequence_id, std::string_view bytes,
                     std::optional<std::int64_t> at_ns);
    bool clock_snapshot(Sequence& sequence, std::string_view bytes);
    bool interned_data(Sequence& sequence, std::string_view bytes);
    bool track_descriptor(std::string_view bytes);
    bool compressed(std::string_view bytes);
    bool inflate_packets(std::string_view in);
    bool read_fields(std::string_view bytes, std::size_t& at, std::uint64_t& needed);
    void end_slice(std::uint64_t track_uuid, TrackState& track, std::int64_t end_ns,
                   bool unfinished, DecodedArgs* end_args = nullptr);
    bool trace_attributes(std::string_view bytes);
    // `value` on `clock_id` as CLOCK_MONOTONIC ns in `ns` (nullopt when the clock is not
    // known); false when the time is out of range: the trace is damaged.
    bool to_monotonic(Sequence& sequence, std::uint32_t clock_id, std::uint64_t value,
                      std::optional<std::int64_t>& ns);
    bool fail(std::string message);

    std::string_view keep(std::string_view text);

    std::deque<std::string> names_;               // every name read, once
    std::unordered_set<std::string_view> known_;  // names_, to find one again
    std::map<std::pair<std::string_view, std::uint32_t>, SourceLocation> locations_;
    std::string pending_;               // the start of a packet that continues in the next piece
    std::uint64_t pending_needed_ = 0;  // its size, when its length has been read
    std::unordered_map<std::uint32_t, Sequence> sequences_;
    std::map<std::uint64_t, TrackInfo> tracks_;
    std::unordered_map<std::uint64_t, TrackState> track_states_;
    // Trace-wide offsets of the builtin clocks from CLOCK_MONOTONIC.
    std::unordered_map<std::uint32_t, std::int64_t> builtin_offsets_;
    static constexpr std::size_t kMostMetadata = 4096;
    std::vector<std::pair<std::string, std::string>> metadata_;
    std::string error_;
    bool truncated_ = false;
    bool closing_due_ = false;
    std::uint64_t packets_ = 0;
    std::uint64_t whole_bytes_ = 0;
    int nesting_ = 0;  // compressed_packets inside compressed_packets is refused
};

// Whether `head` (the first bytes of a file) looks like a Perfetto trace: a packet field.
bool looks_like_perfetto(std::string_view head);

}  // namespace vztrace::format
