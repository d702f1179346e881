// PerfettoSequence: one thread's records as Perfetto TrackEvent packets on a packet
// sequence of its own. SLICE_BEGIN / SLICE_END on the thread's track (set once in the
// sequence's TracePacketDefaults), names interned on first use with small per-sequence
// iids, timestamps as deltas on a sequence-scoped incremental clock defined against
// CLOCK_MONOTONIC. A begin and an end together take 21 to 24 bytes.
//
// Python functions are named "qualname (/abs/file.py:line)", which Perfetto's details
// panel shows. A source_location_iid on every begin would add 3 bytes a call (27 where
// the budget is 26), so the location travels in the name only.
//
// The free functions write the packets around the events: the trace's clock snapshot,
// process and thread descriptors, and vztrace's metadata.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tracer/compiler.hpp"
#include "tracer/format/byte_buffer.hpp"
#include "tracer/format/ended_early.hpp"
#include "tracer/format/perfetto_protos.hpp"
#include "tracer/format/proto_wire.hpp"
#include "tracer/format/record.hpp"

namespace vztrace::format {

// What a packet sequence needs of a symbol the first time it uses it.
struct SymbolInfo {
    std::string_view name;  // the slice's name (VizTracer's spelling)
};

// The sequence-scoped clock of every thread sequence: nanoseconds, incremental.
inline constexpr std::uint32_t kThreadClockId = perfetto::clock::kFirstSequenceScoped;

struct SequenceCounts {
    std::uint64_t events = 0;      // records encoded
    std::uint64_t slices = 0;      // ends written (a begin and its end: one call)
    std::uint64_t unfinished = 0;  // calls flagged: still open at the end, or begun at a cut
    std::uint64_t skipped = 0;     // exits of calls begun before the recording
    std::uint64_t unseen = 0;      // calls left by an exception before their start came
};

class PerfettoSequence {
 public:
    // `process_uuid`: the process's track, parent of the named tracks (counters, tasks).
    PerfettoSequence(std::uint32_t sequence_id, std::uint64_t track_uuid,
                     std::uint64_t process_uuid = 0);

    // The packet that opens the sequence: incremental state cleared, the defaults, and
    // the incremental clock's base at `start_ns` (CLOCK_MONOTONIC).
    // `boottime_offset_ns`: CLOCK_BOOTTIME minus CLOCK_MONOTONIC, for readers whose time
    // axis is BOOTTIME.
    void begin(std::int64_t start_ns, std::int64_t boottime_offset_ns, ByteBuffer& out);
    bool begun() const { return begun_; }
    // What tells the named tracks of this process image from those of the process's other
    // images (their names' ids are their own): a number of the image's.
    void set_image_salt(std::uint64_t salt) { image_salt_ = salt; }

    // Appends the packets of `records`. `to_ns(ticks)` gives CLOCK_MONOTONIC ns;
    // `symbol(id)` gives a SymbolInfo (asked once per symbol per sequence).
    template <typename ToNs, typename Symbols>
    void encode(std::span<const Record> records, ToNs&& to_ns, Symbols&& symbol, ByteBuffer& out);

    // Ends every call still open at `end_ns`, each flagged unfinished (innermost first),
    // and every slice still open on a named track.
    void close_open_calls(std::int64_t end_ns, ByteBuffer& out);
    // Ends the innermost open call at `ns`, flagged unfinished (a call a trace being
    // rewritten had so: export, combine). Nothing when none is open.
    void end_unfinished(std::int64_t ns, ByteBuffer& out);

    // A forked child's thread: the Python calls open at the fork, outermost first, which
    // began in the parent. Their ends come in the child with no beginning; one by an
    // exception is not a call that CPython never said began (write_unseen_call).
    void expect_inherited(std::vector<SymbolId> outermost_first) {
        inherited_ = std::move(outermost_first);
    }

    // A call that was open when an earlier part of the recording was cut (ring mode):
    // begun at `at_ns` and flagged, so what follows nests under it.
    template <typename Symbols>
    void begin_cut_call(SymbolId id, std::int64_t at_ns, Symbols&& symbol, ByteBuffer& out) {
        if (!is_interned(id))
            write_interning_begin(id, symbol(id), at_ns, out, true);
        else
            write_flagged_begin(id, at_ns, out);
    }

    // A slice on a track of its own (an asyncio task's step) that was open when an earlier
    // part of the recording was cut: begun at `at_ns` on that track and flagged, so that
    // its end, kept, has a beginning (it was dropped, the step not shown).
    template <typename Symbols>
    void begin_cut_track_slice(SymbolId name, SymbolId track_name, std::int64_t at_ns,
                               Symbols&& symbol, ByteBuffer& out) {
        wire::ProtoMessage interned;
        const std::uint64_t track = named_track(track_name, symbol(track_name), false, out);
        if (!is_interned(name)) name_for(name, symbol(name), interned);
        write_other(perfetto::track_event::kSliceBegin, name, at_ns, track, interned, nullptr, out,
                    true);
    }

    // The sequence's thread has ended: the table of the names it has sent (4 bytes for
    // every symbol id up to the highest it used) is freed. A name used after all is sent
    // again, under a new iid.
    void forget_names() { std::vector<std::uint32_t>().swap(interned_); }

    const SequenceCounts& counts() const { return counts_; }
    std::int64_t last_ns() const { return last_ns_; }
    std::uint32_t sequence_id() const { return sequence_id_; }
    std::uint64_t track_uuid() const { return track_uuid_; }

 private:
    bool is_interned(SymbolId id) const { return id < interned_.size() && interned_[id] != 0; }
    // Gives `id` the sequence's next iid (small numbers: one-byte varints for the first
    // 127 functions a thread calls).
    void intern(SymbolId id);
    [[gnu::noinline]] void write_interning_begin(SymbolId id, const SymbolInfo& info,
                                                 std::int64_t ns, ByteBuffer& out,
                                                 bool flagged = false);
    [[gnu::noinline]] void write_flagged_end(std::int64_t ns, ByteBuffer& out);
    void write_flagged_begin(SymbolId id, std::int64_t ns, ByteBuffer& out);
    void write_begin(SymbolId id, std::int64_t ns, bool flagged, const wire::ProtoMessage* interned,
                     ByteBuffer& out);
    // Closes the calls above the innermost open call of `id`; false if none is open.
    [[gnu::noinline]] bool unwind_to(SymbolId id, std::int64_t ns, ByteBuffer& out);
    // An end that matches no open call: whether it is that of a call inherited from the
    // parent (expect_inherited), which is then taken off with the inherited calls inside it
    // whose ends were not recorded.
    [[gnu::noinline]] bool end_inherited(SymbolId id);
    // An end that matches no open call: whether it is that of a call inherited, or of one
    // that unwind_to ended early (its stack switched away under the thread: a greenlet).
    bool end_known(SymbolId id) { return end_inherited(id) || ended_early_.take(id); }
    // A call left by an exception whose start never came: CPython sends none when the
    // frame is left at its first instruction (a signal handler that raises there, a trace
    // or profile function of the program's that raises at its 'call'), but the frame ran
    // and its exit comes. It is written where it ended, taking no time.
    [[gnu::noinline]] void write_unseen_call(SymbolId id, const SymbolInfo& info, std::int64_t ns,
                                             ByteBuffer& out);
    void append_packet(const wire::ProtoMessage& packet, ByteBuffer& out) const;
    // Records other than plain calls (see record.hpp), and calls that carry arguments.
    // Returns how many records it took (the event and its raw records).
    template <typename Symbols>
    [[gnu::noinline]] std::size_t encode_other(std::span<const Record> records, std::int64_t ns,
                                               Symbols&& symbol, ByteBuffer& out);
    // The interned name of `id`, added to `interned` when the sequence has not sent it yet.
    void name_for(SymbolId id, const SymbolInfo& info, wire::ProtoMessage& interned);
    // A named track of the process (a counter's, a task's), described once per sequence.
    std::uint64_t named_track(SymbolId name, const SymbolInfo& info, bool counter, ByteBuffer& out);
    void write_other(std::uint32_t type, SymbolId name, std::int64_t ns, std::uint64_t track,
                     const wire::ProtoMessage& interned, const double* counter, ByteBuffer& out,
                     bool flagged = false);
    void take_args(std::span<const Record> raw);
    // False when no call of `id` is open (nothing written).
    bool end_call_with_args(SymbolId id, std::int64_t ns, ByteBuffer& out);
    std::uint64_t delta_to(std::int64_t& ns) {
        if (ns < last_ns_) ns = last_ns_;  // never backwards on one sequence
        const auto delta = static_cast<std::uint64_t>(ns - last_ns_);
        last_ns_ = ns;
        return delta;
    }

    std::uint32_t sequence_id_;
    std::uint64_t track_uuid_;
    std::uint64_t process_uuid_;
    std::uint64_t image_salt_ = 0;
    bool begun_ = false;
    // The next event's arguments, as TrackEvent debug_annotations fields.
    bool has_args_ = false;
    std::string args_;
    std::vector<std::uint64_t> described_tracks_;
    std::vector<std::pair<std::uint64_t, std::uint32_t>> open_on_tracks_;  // uuid, slices
    std::int64_t last_ns_ = 0;
    char sequence_field_[8];  // the packet's trusted_packet_sequence_id, tag and value
    std::size_t sequence_field_size_ = 0;
    // By SymbolId: the sequence's iid for it, 0 when not interned yet.
    std::vector<std::uint32_t> interned_;
    std::uint32_t next_iid_ = 1;
    std::vector<SymbolId> open_;
    // How many of the outermost open calls began flagged at a ring's cut (counted
    // unfinished then, so not again if they end flagged too).
    std::size_t cut_open_ = 0;
    std::vector<SymbolId> inherited_;  // outermost first
    EndedEarly ended_early_;           // by unwind_to
    SequenceCounts counts_;
};

// ---- the packets around the events ---------------------------------------------------

// The trace's own clock snapshot: CLOCK_MONOTONIC is the time axis; BOOTTIME and
// REALTIME readings taken at the same moment let readers relate it to them.
// `realtime_ns` absent: the trace does not know CLOCK_REALTIME (a trace converted from one
// that did not record it), and says nothing of it.
void append_clock_snapshot(std::uint32_t sequence_id, std::int64_t monotonic_ns,
                           std::int64_t boottime_ns, std::optional<std::int64_t> realtime_ns,
                           ByteBuffer& out);

void append_process_descriptor(std::uint32_t sequence_id, std::uint64_t uuid, std::int64_t pid,
                               std::string_view name, std::span<const std::string> cmdline,
                               ByteBuffer& out);

void append_thread_descriptor(std::uint32_t sequence_id, std::uint64_t uuid,
                              std::uint64_t process_uuid, std::int64_t pid, std::int64_t tid,
                              std::string_view name, ByteBuffer& out);

// vztrace's metadata as key/value pairs where Perfetto's "Info and stats" page lists them:
// TraceAttributes (newer Perfetto) and ChromeMetadata (every version, as cr-<key>).
void append_metadata(std::uint32_t sequence_id,
                     std::span<const std::pair<std::string, std::string>> values, ByteBuffer& out);

// A recording's trace opens with kTraceOpening and closes with its metadata, whose first key
// is kTraceClosing: a trace whose last opening is not followed by a closing was cut short
// between two packets (a copy cut short, a writer killed), which nothing else may tell
// (calls are written a thread's block at a time, none left open at such a cut).
inline constexpr std::string_view kTraceOpening = "vztrace.trace";
inline constexpr std::string_view kTraceClosing = "vztrace.version";

// Ends `count` calls left open on a sequence whose stream was cut short (its process was
// killed), at its last event, each flagged unfinished: on the sequence's thread, or on
// `named_track` (an asyncio task's steps) when not 0.
void append_unfinished_ends(std::uint32_t sequence_id, std::size_t count, ByteBuffer& out,
                            std::uint64_t named_track = 0);

// Track uuids: one per process, one per thread sequence; stable across a process tree.
std::uint64_t process_track_uuid(std::int64_t pid);
std::uint64_t thread_track_uuid(std::int64_t pid, std::uint32_t sequence_id);

// ---- the hot loop --------------------------------------------------------------------

template <typename ToNs, typename Symbols>
void PerfettoSequence::encode(std::span<const Record> records, ToNs&& to_ns, Symbols&& symbol,
                              ByteBuffer& out) {
    using namespace perfetto;
    // The largest fast-path packet: 2 (packet header) + 11 (timestamp) + 8 (sequence) +
    // 2 (track_event header) + 2 (type) + 6 (name) bytes.
    constexpr std::size_t kLargest = 32;
    counts_.events += records.size();
    std::size_t i = 0;
    // Arguments at the end of the previous chunk go with this one's first event.
    if (VZ_UNLIKELY(has_args_) && !records.empty()) {
        i = encode_other(records, to_ns(records[0].ticks), symbol, out);
    }
    char* cursor = out.reserve_tail(records.size() * 16 + kLargest);
    const char* limit = out.data() + out.size() + records.size() * 16;
    for (; i < records.size(); ++i) {
        const Record& record = records[i];
        if (VZ_UNLIKELY(cursor > limit)) {
            out.commit_to(cursor);
            cursor = out.reserve_tail(records.size() * 16 + kLargest);
            limit = out.data() + out.size() + records.size() * 16;
        }
        std::int64_t ns = to_ns(record.ticks);
        const SymbolId id = record.symbol;
        // Only here can arguments come (kArgs is not a call event): the event after them
        // is encoded with them at once, and the plain calls need no other test.
        if (VZ_UNLIKELY(!is_call_event(record.kind))) {
            out.commit_to(cursor);
            i += encode_other(records.subspan(i), ns, symbol, out);
            if (has_args_ && i < records.size()) {
                i += encode_other(records.subspan(i), to_ns(records[i].ticks), symbol, out);
            }
            --i;
            cursor = out.reserve_tail(records.size() * 16 + kLargest);
            limit = out.data() + out.size() + records.size() * 16;
            continue;
        }
        if (record.kind == EventKind::kEnter) {
            if (VZ_UNLIKELY(!is_interned(id))) {
                out.commit_to(cursor);
                write_interning_begin(id, symbol(id), ns, out);
                cursor = out.reserve_tail(records.size() * 16 + kLargest);
                limit = out.data() + out.size() + records.size() * 16;
                continue;
            }
            open_.push_back(id);
            // Packet: timestamp, sequence id, track_event { type, name_iid }.
            *cursor++ = static_cast<char>(wire::tag(trace::kPacket, wire::kLength));
            char* size_at = cursor++;
            *cursor++ = static_cast<char>(wire::tag(packet::kTimestamp, wire::kVarint));
            cursor = wire::put_varint(cursor, delta_to(ns));
            std::memcpy(cursor, sequence_field_, 8);
            cursor += sequence_field_size_;
            *cursor++ = static_cast<char>(wire::tag(packet::kTrackEvent, wire::kLength));
            char* event_size_at = cursor++;
            *cursor++ = static_cast<char>(wire::tag(track_event::kType, wire::kVarint));
            *cursor++ = static_cast<char>(track_event::kSliceBegin);
            *cursor++ = static_cast<char>(wire::tag(track_event::kNameIid, wire::kVarint));
            cursor = wire::put_varint(cursor, interned_[id]);
            *event_size_at = static_cast<char>(cursor - event_size_at - 1);
            *size_at = static_cast<char>(cursor - size_at - 1);
            continue;
        }
        if (VZ_UNLIKELY(open_.empty() || open_.back() != id)) {
            out.commit_to(cursor);
            const bool found = !open_.empty() && unwind_to(id, ns, out);
            const bool known = !found && end_known(id);
            if (!found && !known && record.kind == EventKind::kExitByException) {
                write_unseen_call(id, symbol(id), ns, out);
            } else if (!found) {
                ++counts_.skipped;
            }
            cursor = out.reserve_tail(records.size() * 16 + kLargest);
            limit = out.data() + out.size() + records.size() * 16;
            if (!found) continue;
        }
        open_.pop_back();
        if (VZ_UNLIKELY(cut_open_ > open_.size())) cut_open_ = open_.size();
        ++counts_.slices;
        *cursor++ = static_cast<char>(wire::tag(trace::kPacket, wire::kLength));
        char* size_at = cursor++;
        *cursor++ = static_cast<char>(wire::tag(packet::kTimestamp, wire::kVarint));
        cursor = wire::put_varint(cursor, delta_to(ns));
        std::memcpy(cursor, sequence_field_, 8);
        cursor += sequence_field_size_;
        *cursor++ = static_cast<char>(wire::tag(packet::kTrackEvent, wire::kLength));
        *cursor++ = 2;
        *cursor++ = static_cast<char>(wire::tag(track_event::kType, wire::kVarint));
        *cursor++ = static_cast<char>(track_event::kSliceEnd);
        *size_at = static_cast<char>(cursor - size_at - 1);
    }
    out.commit_to(cursor);
}

template <typename Symbols>
std::size_t PerfettoSequence::encode_other(std::span<const Record> records, std::int64_t ns,
                                           Symbols&& symbol, ByteBuffer& out) {
    using namespace perfetto;
    const Record& record = records.front();
    const std::size_t taken = std::min(records.size(), 1 + raw_records_after(record));
    const std::span<const Record> raw = records.subspan(1, taken - 1);
    wire::ProtoMessage interned;
    switch (record.kind) {
        case EventKind::kArgs:
            take_args(raw);
            return taken;
        case EventKind::kEnter:
            if (!is_interned(record.symbol)) {
                name_for(record.symbol, symbol(record.symbol), interned);
            }
            write_begin(record.symbol, ns, false, interned.empty() ? nullptr : &interned, out);
            break;
        case EventKind::kExit:
            if (!end_call_with_args(record.symbol, ns, out)) {
                end_known(record.symbol);
                ++counts_.skipped;
            }
            break;
        case EventKind::kExitByException:
            if (end_call_with_args(record.symbol, ns, out)) break;
            if (end_known(record.symbol)) {
                ++counts_.skipped;
            } else {
                write_unseen_call(record.symbol, symbol(record.symbol), ns, out);
            }
            break;
        case EventKind::kInstant:
            if (!is_interned(record.symbol)) {
                name_for(record.symbol, symbol(record.symbol), interned);
            }
            write_other(track_event::kInstant, record.symbol, ns, 0, interned, nullptr, out);
            break;
        case EventKind::kCounter: {
            if (raw.empty()) break;
            double value = 0;
            std::memcpy(&value, raw.data(), sizeof value);
            const std::uint64_t track =
                named_track(record.symbol, symbol(record.symbol), true, out);
            write_other(track_event::kCounter, record.symbol, ns, track, interned, &value, out);
            break;
        }
        case EventKind::kTrackEnter: {
            if (raw.empty()) break;
            SymbolId track_name = 0;
            std::memcpy(&track_name, raw.data(), sizeof track_name);
            const std::uint64_t track = named_track(track_name, symbol(track_name), false, out);
            if (!is_interned(record.symbol)) {
                name_for(record.symbol, symbol(record.symbol), interned);
            }
            write_other(track_event::kSliceBegin, record.symbol, ns, track, interned, nullptr, out);
            break;
        }
        case EventKind::kTrackExit: {
            const std::uint64_t track =
                named_track(record.symbol, symbol(record.symbol), false, out);
            write_other(track_event::kSliceEnd, record.symbol, ns, track, interned, nullptr, out);
            break;
        }
    }
    has_args_ = false;
    args_.clear();
    return taken;
}

}  // namespace vztrace::format
