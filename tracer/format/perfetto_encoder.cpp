#include "tracer/format/perfetto_encoder.hpp"

#include <algorithm>

#include "tracer/format/chrome_json.hpp"

namespace vztrace::format {
namespace {

using wire::ProtoMessage;
namespace pf = perfetto;

void append_packet_to(const ProtoMessage& packet, ByteBuffer& out) {
    char header[11];
    header[0] = static_cast<char>(wire::tag(pf::trace::kPacket, wire::kLength));
    char* end = wire::put_varint(header + 1, packet.data().size());
    out.append(std::string_view(header, static_cast<std::size_t>(end - header)));
    out.append(packet.data());
}

// The annotation that marks a call vztrace closed itself, or one begun before a cut.
ProtoMessage unfinished_flag() {
    ProtoMessage flag;
    flag.bytes(pf::debug_annotation::kName, "unfinished")
        .boolean(pf::debug_annotation::kBoolValue, true);
    return flag;
}

ProtoMessage flagged_end_event() {
    const ProtoMessage flag = unfinished_flag();
    ProtoMessage event;
    event.varint(pf::track_event::kType, pf::track_event::kSliceEnd)
        .message(pf::track_event::kDebugAnnotations, flag);
    return event;
}

// splitmix64: spreads pids and sequence ids over the uuid space.
std::uint64_t mix(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

}  // namespace

PerfettoSequence::PerfettoSequence(std::uint32_t sequence_id, std::uint64_t track_uuid,
                                   std::uint64_t process_uuid)
    : sequence_id_(sequence_id), track_uuid_(track_uuid), process_uuid_(process_uuid) {
    sequence_field_[0] =
        static_cast<char>(wire::tag(pf::packet::kTrustedPacketSequenceId, wire::kVarint));
    sequence_field_size_ = static_cast<std::size_t>(
        wire::put_varint(sequence_field_ + 1, sequence_id) - sequence_field_);
    open_.reserve(256);
}

void PerfettoSequence::append_packet(const ProtoMessage& packet, ByteBuffer& out) const {
    append_packet_to(packet, out);
}

void PerfettoSequence::begin(std::int64_t start_ns, std::int64_t boottime_offset_ns,
                             ByteBuffer& out) {
    begun_ = true;
    last_ns_ = start_ns;
    ProtoMessage event_defaults;
    event_defaults.varint(pf::track_event_defaults::kTrackUuid, track_uuid_);
    ProtoMessage defaults;
    defaults.varint(pf::defaults::kTimestampClockId, kThreadClockId)
        .message(pf::defaults::kTrackEventDefaults, event_defaults);
    // The snapshot's own packet has no timestamp: readers take the clocks' values from it.
    ProtoMessage snapshot;
    const std::pair<std::uint32_t, std::int64_t> clocks[] = {
        {pf::clock::kBoottime, start_ns + boottime_offset_ns},
        {pf::clock::kMonotonic, start_ns},
        {kThreadClockId, start_ns}};
    for (const auto& [id, ns] : clocks) {
        ProtoMessage clock;
        clock.varint(pf::clock::kClockId, id)
            .varint(pf::clock::kTimestamp, static_cast<std::uint64_t>(ns));
        if (id == kThreadClockId) clock.boolean(pf::clock::kIsIncremental, true);
        snapshot.message(pf::clock_snapshot::kClocks, clock);
    }
    snapshot.varint(pf::clock_snapshot::kPrimaryTraceClock, pf::clock::kMonotonic);
    ProtoMessage packet;
    packet.varint(pf::packet::kTrustedPacketSequenceId, sequence_id_)
        .varint(pf::packet::kSequenceFlags, pf::packet::kSeqIncrementalStateCleared)
        .boolean(pf::packet::kFirstPacketOnSequence, true)
        .message(pf::packet::kTracePacketDefaults, defaults)
        .message(pf::packet::kClockSnapshot, snapshot);
    append_packet(packet, out);
}

void PerfettoSequence::intern(SymbolId id) {
    if (interned_.size() <= id) {
        interned_.resize(std::max<std::size_t>(id + 1, interned_.size() * 2), 0);
    }
    interned_[id] = next_iid_++;
}

void PerfettoSequence::write_interning_begin(SymbolId id, const SymbolInfo& info, std::int64_t ns,
                                             ByteBuffer& out, bool flagged) {
    intern(id);
    ProtoMessage name;
    name.varint(pf::event_name::kIid, interned_[id]).bytes(pf::event_name::kName, info.name);
    ProtoMessage interned;
    interned.message(pf::interned_data::kEventNames, name);
    write_begin(id, ns, flagged, &interned, out);
}

void PerfettoSequence::write_flagged_begin(SymbolId id, std::int64_t ns, ByteBuffer& out) {
    write_begin(id, ns, true, nullptr, out);
}

void PerfettoSequence::write_begin(SymbolId id, std::int64_t ns, bool flagged,
                                   const ProtoMessage* interned, ByteBuffer& out) {
    if (flagged) {  // a call open at a ring's cut, below any begun since
        if (cut_open_ == open_.size()) ++cut_open_;
        ++counts_.unfinished;
    }
    open_.push_back(id);
    ProtoMessage event;
    event.varint(pf::track_event::kType, pf::track_event::kSliceBegin)
        .varint(pf::track_event::kNameIid, interned_[id]);
    if (flagged) event.message(pf::track_event::kDebugAnnotations, unfinished_flag());
    if (has_args_) event.raw(args_);
    ProtoMessage packet;
    packet.varint(pf::packet::kTimestamp, delta_to(ns))
        .varint(pf::packet::kTrustedPacketSequenceId, sequence_id_)
        .message(pf::packet::kTrackEvent, event);
    if (interned != nullptr) packet.message(pf::packet::kInternedData, *interned);
    append_packet(packet, out);
}

void PerfettoSequence::write_flagged_end(std::int64_t ns, ByteBuffer& out) {
    static const ProtoMessage kEvent = flagged_end_event();
    ProtoMessage packet;
    packet.varint(pf::packet::kTimestamp, delta_to(ns))
        .varint(pf::packet::kTrustedPacketSequenceId, sequence_id_)
        .message(pf::packet::kTrackEvent, kEvent);
    append_packet(packet, out);
    ++counts_.slices;
    if (cut_open_ > open_.size()) {  // begun flagged at a cut: counted then
        cut_open_ = open_.size();
    } else {
        ++counts_.unfinished;
    }
}

bool PerfettoSequence::unwind_to(SymbolId id, std::int64_t ns, ByteBuffer& out) {
    if (ended_early_.late_exit(id, open_.back() == id)) return false;  // end_known takes it
    std::size_t depth = open_.size();
    while (depth > 0 && open_[depth - 1] != id) --depth;
    if (depth == 0) return false;
    while (open_.size() > depth) {  // the calls above it end with it, flagged
        ended_early_.add(open_.back());
        open_.pop_back();
        write_flagged_end(ns, out);
    }
    return true;
}

void PerfettoSequence::end_unfinished(std::int64_t ns, ByteBuffer& out) {
    if (open_.empty()) return;
    open_.pop_back();
    write_flagged_end(ns, out);
}

void PerfettoSequence::close_open_calls(std::int64_t end_ns, ByteBuffer& out) {
    while (!open_.empty()) {
        open_.pop_back();
        write_flagged_end(end_ns, out);
    }
    has_args_ = false;
    args_.clear();
    for (auto& [track, count] : open_on_tracks_) {
        for (; count > 0; --count) {
            ProtoMessage event = flagged_end_event();
            event.varint(pf::track_event::kTrackUuid, track);
            ProtoMessage packet;
            packet.varint(pf::packet::kTimestamp, delta_to(end_ns))
                .varint(pf::packet::kTrustedPacketSequenceId, sequence_id_)
                .message(pf::packet::kTrackEvent, event);
            append_packet(packet, out);
        }
    }
}

void PerfettoSequence::take_args(std::span<const Record> raw) {
    std::string_view bytes(reinterpret_cast<const char*>(raw.data()), raw.size_bytes());
    std::uint32_t size = 0;
    if (bytes.size() < sizeof size) return;
    std::memcpy(&size, bytes.data(), sizeof size);
    bytes = bytes.substr(sizeof size, std::min<std::size_t>(size, bytes.size() - sizeof size));
    args_.clear();
    for (const auto& [name, value] : decode_args(bytes)) {
        ProtoMessage annotation;
        annotation.bytes(pf::debug_annotation::kName, name)
            .bytes(pf::debug_annotation::kStringValue, value);
        ProtoMessage field;
        field.message(pf::track_event::kDebugAnnotations, annotation);
        args_ += field.data();
    }
    has_args_ = !args_.empty();
}

void PerfettoSequence::name_for(SymbolId id, const SymbolInfo& info, ProtoMessage& interned) {
    intern(id);
    ProtoMessage name;
    name.varint(pf::event_name::kIid, interned_[id]).bytes(pf::event_name::kName, info.name);
    interned.message(pf::interned_data::kEventNames, name);
}

std::uint64_t PerfettoSequence::named_track(SymbolId name, const SymbolInfo& info, bool counter,
                                            ByteBuffer& out) {
    // This image's own (image_salt_): the images of a process that execs itself number
    // their names anew, and Task-1 of each was one track.
    const std::uint64_t uuid =
        mix(process_uuid_ ^ image_salt_ ^ mix((std::uint64_t{name} << 2) | (counter ? 2U : 0U)));
    if (std::find(described_tracks_.begin(), described_tracks_.end(), uuid) !=
        described_tracks_.end()) {
        return uuid;
    }
    described_tracks_.push_back(uuid);
    ProtoMessage track;
    track.varint(pf::track_descriptor::kUuid, uuid)
        .varint(pf::track_descriptor::kParentUuid, process_uuid_)
        .bytes(pf::track_descriptor::kName, info.name);
    if (counter) track.message(pf::track_descriptor::kCounter, ProtoMessage());
    ProtoMessage packet;
    packet.varint(pf::packet::kTrustedPacketSequenceId, sequence_id_)
        .message(pf::packet::kTrackDescriptor, track);
    append_packet(packet, out);
    return uuid;
}

void PerfettoSequence::write_other(std::uint32_t type, SymbolId name, std::int64_t ns,
                                   std::uint64_t track, const ProtoMessage& interned,
                                   const double* counter, ByteBuffer& out, bool flagged) {
    if (track != 0) {
        auto open = std::find_if(open_on_tracks_.begin(), open_on_tracks_.end(),
                                 [track](const auto& entry) { return entry.first == track; });
        if (type == pf::track_event::kSliceBegin) {
            if (open == open_on_tracks_.end()) {
                open_on_tracks_.emplace_back(track, 0);
                open = open_on_tracks_.end() - 1;
            }
            ++open->second;
        } else if (type == pf::track_event::kSliceEnd) {
            if (open == open_on_tracks_.end() || open->second == 0) return;  // begun before
            --open->second;
        }
    }
    ProtoMessage event;
    event.varint(pf::track_event::kType, type);
    if (type == pf::track_event::kInstant || type == pf::track_event::kSliceBegin) {
        event.varint(pf::track_event::kNameIid, interned_[name]);
    }
    if (track != 0) event.varint(pf::track_event::kTrackUuid, track);
    if (counter != nullptr) event.real(pf::track_event::kDoubleCounterValue, *counter);
    if (flagged) event.message(pf::track_event::kDebugAnnotations, unfinished_flag());
    if (has_args_) event.raw(args_);
    ProtoMessage packet;
    packet.varint(pf::packet::kTimestamp, delta_to(ns))
        .varint(pf::packet::kTrustedPacketSequenceId, sequence_id_)
        .message(pf::packet::kTrackEvent, event);
    if (!interned.empty()) packet.message(pf::packet::kInternedData, interned);
    append_packet(packet, out);
}

void PerfettoSequence::write_unseen_call(SymbolId id, const SymbolInfo& info, std::int64_t ns,
                                         ByteBuffer& out) {
    // The arguments waiting (an exception's text) go with the end, as for any call.
    const bool had_args = has_args_;
    has_args_ = false;
    if (!is_interned(id)) {
        write_interning_begin(id, info, ns, out);
    } else {
        write_begin(id, ns, false, nullptr, out);
    }
    has_args_ = had_args;
    ++counts_.unseen;
    end_call_with_args(id, ns, out);
}

bool PerfettoSequence::end_inherited(SymbolId id) {
    for (std::size_t at = inherited_.size(); at-- > 0;) {
        if (inherited_[at] == id) {
            inherited_.resize(at);
            return true;
        }
    }
    return false;
}

bool PerfettoSequence::end_call_with_args(SymbolId id, std::int64_t ns, ByteBuffer& out) {
    if (open_.empty() || !unwind_to(id, ns, out)) return false;
    open_.pop_back();
    cut_open_ = std::min(cut_open_, open_.size());
    ++counts_.slices;
    ProtoMessage event;
    event.varint(pf::track_event::kType, pf::track_event::kSliceEnd).raw(args_);
    ProtoMessage packet;
    packet.varint(pf::packet::kTimestamp, delta_to(ns))
        .varint(pf::packet::kTrustedPacketSequenceId, sequence_id_)
        .message(pf::packet::kTrackEvent, event);
    append_packet(packet, out);
    return true;
}

void append_clock_snapshot(std::uint32_t sequence_id, std::int64_t monotonic_ns,
                           std::int64_t boottime_ns, std::optional<std::int64_t> realtime_ns,
                           ByteBuffer& out) {
    ProtoMessage snapshot;
    const std::pair<std::uint32_t, std::int64_t> clocks[] = {
        {pf::clock::kBoottime, boottime_ns},
        {pf::clock::kMonotonic, monotonic_ns},
        {pf::clock::kRealtime, realtime_ns.value_or(0)}};
    for (const auto& [id, ns] : clocks) {
        if (id == pf::clock::kRealtime && !realtime_ns) continue;
        ProtoMessage clock;
        clock.varint(pf::clock::kClockId, id)
            .varint(pf::clock::kTimestamp, static_cast<std::uint64_t>(ns));
        snapshot.message(pf::clock_snapshot::kClocks, clock);
    }
    snapshot.varint(pf::clock_snapshot::kPrimaryTraceClock, pf::clock::kMonotonic);
    ProtoMessage packet;
    packet.varint(pf::packet::kTrustedPacketSequenceId, sequence_id)
        .message(pf::packet::kClockSnapshot, snapshot);
    append_packet_to(packet, out);
}

void append_process_descriptor(std::uint32_t sequence_id, std::uint64_t uuid, std::int64_t pid,
                               std::string_view name, std::span<const std::string> cmdline,
                               ByteBuffer& out) {
    ProtoMessage process;
    process.sint(pf::process_descriptor::kPid, pid);
    for (const auto& arg : cmdline) process.bytes(pf::process_descriptor::kCmdline, arg);
    if (!name.empty()) process.bytes(pf::process_descriptor::kProcessName, name);
    ProtoMessage track;
    track.varint(pf::track_descriptor::kUuid, uuid)
        .message(pf::track_descriptor::kProcess, process);
    ProtoMessage packet;
    packet.varint(pf::packet::kTrustedPacketSequenceId, sequence_id)
        .message(pf::packet::kTrackDescriptor, track);
    append_packet_to(packet, out);
}

void append_thread_descriptor(std::uint32_t sequence_id, std::uint64_t uuid,
                              std::uint64_t process_uuid, std::int64_t pid, std::int64_t tid,
                              std::string_view name, ByteBuffer& out) {
    ProtoMessage thread;
    thread.sint(pf::thread_descriptor::kPid, pid).sint(pf::thread_descriptor::kTid, tid);
    if (!name.empty()) thread.bytes(pf::thread_descriptor::kThreadName, name);
    ProtoMessage track;
    track.varint(pf::track_descriptor::kUuid, uuid)
        .varint(pf::track_descriptor::kParentUuid, process_uuid)
        .message(pf::track_descriptor::kThread, thread);
    ProtoMessage packet;
    packet.varint(pf::packet::kTrustedPacketSequenceId, sequence_id)
        .message(pf::packet::kTrackDescriptor, track);
    append_packet_to(packet, out);
}

void append_metadata(std::uint32_t sequence_id,
                     std::span<const std::pair<std::string, std::string>> values, ByteBuffer& out) {
    // TraceAttributes (Perfetto v55 on): "Info and stats", Metadata, Trace Attributes.
    ProtoMessage attributes;
    // ChromeMetadata (every version): "Info and stats", as cr-<key>.
    ProtoMessage bundle;
    for (const auto& [raw_key, raw_value] : values) {
        // Perfetto's strings are UTF-8: a path from the command line may not be.
        const std::string key = valid_utf8(raw_key);
        const std::string value = valid_utf8(raw_value);
        ProtoMessage attribute;
        attribute.bytes(pf::trace_attributes::kKey, key)
            .bytes(pf::trace_attributes::kStringValue, value);
        attributes.message(pf::trace_attributes::kAttribute, attribute);
        ProtoMessage metadata;
        metadata.bytes(pf::chrome_metadata::kName, key)
            .bytes(pf::chrome_metadata::kStringValue, value);
        bundle.message(pf::chrome_event_bundle::kMetadata, metadata);
    }
    ProtoMessage packet;
    packet.varint(pf::packet::kTrustedPacketSequenceId, sequence_id)
        .message(pf::packet::kTraceAttributes, attributes);
    append_packet_to(packet, out);
    ProtoMessage chrome;
    chrome.varint(pf::packet::kTrustedPacketSequenceId, sequence_id)
        .message(pf::packet::kChromeEvents, bundle);
    append_packet_to(chrome, out);
}

void append_unfinished_ends(std::uint32_t sequence_id, std::size_t count, ByteBuffer& out,
                            std::uint64_t named_track) {
    ProtoMessage event = flagged_end_event();
    if (named_track != 0) event.varint(pf::track_event::kTrackUuid, named_track);
    ProtoMessage packet;
    packet
        .varint(pf::packet::kTimestamp, 0)  // a delta: at the sequence's last event
        .varint(pf::packet::kTrustedPacketSequenceId, sequence_id)
        .message(pf::packet::kTrackEvent, event);
    for (std::size_t i = 0; i < count; ++i) append_packet_to(packet, out);
}

std::uint64_t process_track_uuid(std::int64_t pid) {
    return mix(static_cast<std::uint64_t>(pid) << 1);
}

std::uint64_t thread_track_uuid(std::int64_t pid, std::uint32_t sequence_id) {
    return mix((static_cast<std::uint64_t>(pid) << 32 | sequence_id) << 1 | 1);
}

}  // namespace vztrace::format
