#include "tracer/format/perfetto_reader.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <iterator>

#include "tracer/format/chrome_json.hpp"
#include "tracer/format/perfetto_encoder.hpp"
#include "tracer/format/perfetto_protos.hpp"
#include "tracer/format/proto_wire.hpp"
#include "tracer/format/time_math.hpp"

namespace vztrace::format {
namespace {

namespace pf = perfetto;
using wire::ProtoReader;

// A packet larger than this is damage, not data (Perfetto's own packets stay far below).
constexpr std::uint64_t kLargestPacket = std::uint64_t{256} << 20;

// A varint of `bytes` at `at`, which moves past it: kCut when `bytes` ends inside it, kBad
// when it runs past ten bytes.
enum class Varint { kRead, kCut, kBad };
Varint read_varint(std::string_view bytes, std::size_t& at, std::uint64_t& value) {
    value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (at >= bytes.size()) return Varint::kCut;
        const auto byte = static_cast<std::uint8_t>(bytes[at++]);
        value |= std::uint64_t{byte & 0x7FU} << shift;
        if ((byte & 0x80U) == 0) return Varint::kRead;
    }
    return Varint::kBad;
}

}  // namespace

bool looks_like_perfetto(std::string_view head) {
    if (head.empty() ||
        static_cast<std::uint8_t>(head[0]) != wire::tag(pf::trace::kPacket, wire::kLength)) {
        return false;
    }
    // A varint at `at`; false where the head ends inside it (nothing can be told past it).
    std::size_t at = 1;
    const auto varint = [&head, &at](std::uint64_t& value) {
        value = 0;
        for (int shift = 0; shift < 64 && at < head.size(); shift += 7) {
            const auto byte = static_cast<std::uint8_t>(head[at++]);
            value |= std::uint64_t{byte & 0x7FU} << shift;
            if ((byte & 0x80U) == 0) return true;
        }
        return false;
    };
    std::uint64_t size = 0;
    if (!varint(size)) return true;
    const std::uint64_t end = at + size;
    // The packet's first bytes read as fields of known wire types within it: a JSON text
    // opening with a newline reads as a packet's tag and length ("\n[" is a packet of 91
    // bytes), but its text does not read on as fields for long.
    while (at < head.size() && at < end) {
        std::uint64_t key = 0;
        if (!varint(key)) return true;
        if ((key >> 3) == 0) return false;
        std::uint64_t skip = 0;
        switch (key & 7U) {
            case wire::kVarint:
                if (!varint(skip)) return true;
                skip = 0;
                break;
            case wire::kFixed64:
                skip = 8;
                break;
            case wire::kLength:
                if (!varint(skip)) return true;
                break;
            case wire::kFixed32:
                skip = 4;
                break;
            default:  // groups (3, 4) and what is no wire type
                return false;
        }
        if (skip > end - at) return false;
        at += static_cast<std::size_t>(skip);
    }
    return true;
}

bool PerfettoReader::fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
}

// Names as valid UTF-8 (a damaged or foreign trace's bytes as U+FFFD), as the JSON reader
// gives them: every output written from them then holds valid UTF-8 too. Each is kept once:
// other tools write a slice's name in each event rather than interned, and each event's
// copy made memory grow with the trace's length.
std::string_view PerfettoReader::keep(std::string_view text) {
    std::string valid = valid_utf8(text);
    if (const auto found = known_.find(valid); found != known_.end()) return *found;
    return *known_.insert(names_.emplace_back(std::move(valid))).first;
}

bool PerfettoReader::feed(std::string_view bytes) {
    if (!error_.empty()) return false;
    if (pending_.empty()) {
        std::size_t at = 0;
        if (!read_fields(bytes, at, pending_needed_)) return false;
        whole_bytes_ += at;
        pending_.assign(bytes.substr(at));
        return true;
    }
    // A field continues: its bytes are gathered until they are all there (joined and read
    // again at each piece before, a field of 200 MB made reading quadratic).
    pending_.append(bytes);
    if (pending_.size() < pending_needed_) return true;
    std::size_t at = 0;
    if (!read_fields(pending_, at, pending_needed_)) return false;
    whole_bytes_ += at;
    pending_.erase(0, at);
    return true;
}

// Reads the Trace fields of `bytes` from `at` (a packet at a time) up to the first that
// `bytes` does not hold whole; `at` ends at its start, and `needed` is its size when its
// length was read (else 0). False when the bytes are damaged.
bool PerfettoReader::read_fields(std::string_view bytes, std::size_t& at, std::uint64_t& needed) {
    needed = 0;
    while (at < bytes.size()) {
        // One field: its key, then its value. Trace has no field but packet that anyone
        // writes: a well-formed other one is skipped.
        std::size_t p = at;
        std::uint64_t key = 0;
        std::uint64_t size = 0;
        Varint read = read_varint(bytes, p, key);
        if (read == Varint::kRead && (key >> 3) == 0) read = Varint::kBad;
        if (read == Varint::kRead) {
            switch (key & 7U) {
                case wire::kVarint:
                    read = read_varint(bytes, p, size);
                    size = 0;
                    break;
                case wire::kFixed64:
                    size = 8;
                    break;
                case wire::kLength:
                    read = read_varint(bytes, p, size);
                    break;
                case wire::kFixed32:
                    size = 4;
                    break;
                default:
                    read = Varint::kBad;
                    break;
            }
        }
        if (read == Varint::kCut) return true;
        if (read == Varint::kBad) {
            if (nesting_ > 0)
                return fail("damaged trace: compressed packets hold a damaged packet");
            return fail(fmt::format("damaged trace: bad field at byte {}", whole_bytes_ + at));
        }
        if (size > kLargestPacket)
            return fail(fmt::format("damaged trace: a packet of {} bytes", size));
        if (bytes.size() - p < size) {
            needed = p - at + size;
            return true;
        }
        const bool is_packet = (key >> 3) == pf::trace::kPacket && (key & 7U) == wire::kLength;
        if (is_packet && !packet(bytes.substr(p, size))) return false;
        at = p + size;
    }
    return true;
}

bool PerfettoReader::finish() {
    if (!error_.empty()) return false;
    if (!pending_.empty()) {
        truncated_ = true;
        return false;
    }
    return true;
}

bool PerfettoReader::read_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(fmt::format("cannot read '{}': {}", path, std::strerror(errno)));
    const bool ok = read_descriptor(fd, path, {});
    ::close(fd);
    return ok;
}

bool PerfettoReader::read_descriptor(int fd, const std::string& path, std::string_view head) {
    std::string block(std::size_t{4} << 20, '\0');
    bool first = true;
    const auto take = [&](std::string_view piece) {
        if (first && !looks_like_perfetto(piece)) {
            return fail(fmt::format("'{}' is not a Perfetto trace", path));
        }
        first = false;
        return feed(piece);
    };
    bool ok = head.empty() || take(head);
    while (ok && fd >= 0) {
        const ssize_t n = ::read(fd, block.data(), block.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            ok = fail(fmt::format("cannot read '{}': {}", path, std::strerror(errno)));
            break;
        }
        if (n == 0) break;
        ok = take(std::string_view(block.data(), static_cast<std::size_t>(n)));
    }
    if (!ok) return false;
    if (first) return fail(fmt::format("'{}' is empty", path));
    if (!finish()) return fail(fmt::format("'{}' ends inside a packet (cut short)", path));
    return true;
}

namespace {

// Times a trace may hold, in nanoseconds either side of the clock's zero: 73 years
// (time_math.hpp). Any difference of two fits in 64 bits, so what reads the calls needs no
// checks of its own (a damaged delta of 2^62 made a call of 9e12 ms, and exports with
// negative durations).
using format::kLongestOffset;
using format::kLongestTime;

// `a + b * c`, or nullopt when it overflows or leaves the times a trace may hold.
std::optional<std::int64_t> time_from(std::int64_t a, std::int64_t b, std::int64_t c = 1) {
    std::int64_t product = 0, sum = 0;
    if (__builtin_mul_overflow(b, c, &product) || __builtin_add_overflow(a, product, &sum) ||
        sum > kLongestTime || sum < -kLongestTime) {
        return std::nullopt;
    }
    return sum;
}

}  // namespace

bool PerfettoReader::to_monotonic(Sequence& sequence, std::uint32_t clock_id, std::uint64_t value,
                                  std::optional<std::int64_t>& ns) {
    ns.reset();
    const auto given = static_cast<std::int64_t>(value);
    if (clock_id >= pf::clock::kFirstSequenceScoped && clock_id < 128) {
        const auto found = sequence.clocks.find(clock_id);
        if (found == sequence.clocks.end()) return true;
        Clock& clock = found->second;
        const auto reading =
            clock.incremental ? time_from(clock.value, given) : time_from(given, 0);
        if (reading) {
            clock.value = *reading;
            const auto since_base = time_from(clock.value, -1, clock.base_value);
            if (since_base) ns = time_from(clock.base_monotonic, *since_base, clock.unit_ns);
        }
    } else {
        const auto offset = builtin_offsets_.find(clock_id);
        const bool shifted = clock_id != pf::clock::kMonotonic && offset != builtin_offsets_.end();
        ns = shifted ? time_from(given, -1, offset->second) : time_from(given, 0);
    }
    return ns ? true : fail("damaged trace: a time out of range");
}

bool PerfettoReader::clock_snapshot(Sequence& sequence, std::string_view bytes) {
    struct Reading {
        std::uint32_t id = 0;
        std::int64_t value = 0;
        bool incremental = false;
        std::int64_t unit_ns = 1;
    };
    std::vector<Reading> readings;
    ProtoReader snapshot(bytes);
    while (snapshot.next()) {
        if (snapshot.field() != pf::clock_snapshot::kClocks || snapshot.type() != wire::kLength)
            continue;
        Reading reading;
        ProtoReader clock = snapshot.nested();
        while (clock.next()) {
            switch (clock.field()) {
                case pf::clock::kClockId:
                    reading.id = static_cast<std::uint32_t>(clock.value());
                    break;
                case pf::clock::kTimestamp:
                    reading.value = clock.as_int();
                    break;
                case pf::clock::kIsIncremental:
                    reading.incremental = clock.value() != 0;
                    break;
                case pf::clock::kUnitMultiplierNs:
                    reading.unit_ns = clock.value() == 0 ? 1 : clock.as_int();
                    break;
                default:
                    break;
            }
        }
        // The trace's own clocks hold its times; the others (CLOCK_REALTIME) are only
        // related to them.
        const bool own = reading.id == pf::clock::kMonotonic ||
                         (reading.id >= pf::clock::kFirstSequenceScoped && reading.id < 128);
        const std::int64_t longest = own ? kLongestTime : kLongestOffset;
        if (!clock.ok() || reading.value > longest || reading.value < -longest) {
            return fail("damaged clock snapshot");
        }
        readings.push_back(reading);
    }
    if (!snapshot.ok()) return fail("damaged clock snapshot");
    // The monotonic reading anchors the others.
    std::optional<std::int64_t> monotonic;
    for (const auto& r : readings) {
        if (r.id == pf::clock::kMonotonic) monotonic = r.value;
    }
    if (!monotonic) return true;
    for (const auto& r : readings) {
        if (r.id >= pf::clock::kFirstSequenceScoped && r.id < 128) {
            Clock& clock = sequence.clocks[r.id];
            clock.value = r.value;
            clock.base_value = r.value;
            clock.base_monotonic = *monotonic;
            clock.unit_ns = r.unit_ns;
            clock.incremental = r.incremental;
        } else if (r.id != pf::clock::kMonotonic && builtin_offsets_.count(r.id) == 0) {
            builtin_offsets_[r.id] = r.value - *monotonic;
        }
    }
    return true;
}

bool PerfettoReader::interned_data(Sequence& sequence, std::string_view bytes) {
    ProtoReader data(bytes);
    while (data.next()) {
        if (data.type() != wire::kLength) continue;
        const std::uint32_t field = data.field();
        if (field != pf::interned_data::kEventNames &&
            field != pf::interned_data::kSourceLocations &&
            field != pf::interned_data::kDebugAnnotationNames) {
            continue;
        }
        ProtoReader entry = data.nested();
        std::uint64_t iid = 0;
        std::string_view name, file;
        std::uint32_t line = 0;
        while (entry.next()) {
            if (entry.field() == 1) iid = entry.value();
            if (field == pf::interned_data::kSourceLocations) {
                if (entry.field() == pf::source_location::kFileName) file = entry.bytes();
                if (entry.field() == pf::source_location::kLineNumber)
                    line = static_cast<std::uint32_t>(entry.value());
            } else if (entry.field() == pf::event_name::kName && entry.type() == wire::kLength) {
                name = entry.bytes();
            }
        }
        if (!entry.ok()) return fail("damaged interned data");
        if (field == pf::interned_data::kEventNames) {
            sequence.names[iid] = keep(name);
        } else if (field == pf::interned_data::kDebugAnnotationNames) {
            sequence.annotation_names[iid] = keep(name);
        } else {
            // Once each: every thread's sequence interns the same places.
            const std::string_view kept = keep(file);
            sequence.locations[iid] =
                &locations_.try_emplace({kept, line}, SourceLocation{std::string(kept), line})
                     .first->second;
        }
    }
    return data.ok() || fail("damaged interned data");
}

bool PerfettoReader::track_descriptor(std::string_view bytes) {
    TrackInfo info;
    ProtoReader track(bytes);
    while (track.next()) {
        switch (track.field()) {
            case pf::track_descriptor::kUuid:
                info.uuid = track.value();
                break;
            case pf::track_descriptor::kParentUuid:
                info.parent_uuid = track.value();
                break;
            case pf::track_descriptor::kName:
                if (track.type() == wire::kLength) info.name = valid_utf8(track.bytes());
                break;
            case pf::track_descriptor::kCounter:
                info.is_counter = true;
                break;
            case pf::track_descriptor::kProcess:
            case pf::track_descriptor::kThread: {
                if (track.type() != wire::kLength) break;
                const bool thread = track.field() == pf::track_descriptor::kThread;
                (thread ? info.is_thread : info.is_process) = true;
                ProtoReader inner = track.nested();
                while (inner.next()) {
                    if (inner.field() == 1) info.pid = inner.as_int();  // pid in both
                    if (thread && inner.field() == pf::thread_descriptor::kTid)
                        info.tid = inner.as_int();
                    if ((thread && inner.field() == pf::thread_descriptor::kThreadName) ||
                        (!thread && inner.field() == pf::process_descriptor::kProcessName)) {
                        if (inner.type() == wire::kLength) info.name = valid_utf8(inner.bytes());
                    }
                }
                if (!inner.ok()) return fail("damaged track descriptor");
                break;
            }
            default:
                break;
        }
    }
    if (!track.ok()) return fail("damaged track descriptor");
    auto& known = tracks_[info.uuid];
    if (info.name.empty() && !known.name.empty()) info.name = known.name;  // a rename keeps it
    if (info.pid == 0 && known.pid != 0) {
        info.pid = known.pid;
        info.tid = known.tid;
        info.is_process = known.is_process;
        info.is_thread = known.is_thread;
    }
    if (info.pid == 0 && info.parent_uuid != 0) {  // a named track: its process's pid
        const auto parent = tracks_.find(info.parent_uuid);
        if (parent != tracks_.end()) info.pid = parent->second.pid;
    }
    known = info;
    if (on_track) on_track(known);
    return true;
}

bool PerfettoReader::track_event(Sequence& sequence, std::uint32_t sequence_id,
                                 std::string_view bytes, std::optional<std::int64_t> at_ns) {
    std::uint32_t type = 0;
    std::uint64_t track_uuid = sequence.default_track;
    std::string_view name;
    const SourceLocation* location = nullptr;
    bool unfinished = false;
    std::optional<double> counter;
    DecodedArgs args;
    ProtoReader event(bytes);
    while (event.next()) {
        switch (event.field()) {
            case pf::track_event::kType:
                type = static_cast<std::uint32_t>(event.value());
                break;
            case pf::track_event::kTrackUuid:
                track_uuid = event.value();
                break;
            case pf::track_event::kNameIid: {
                const auto found = sequence.names.find(event.value());
                if (found == sequence.names.end()) {
                    return fail(fmt::format("damaged trace: name {} used before it is defined",
                                            event.value()));
                }
                name = found->second;
                break;
            }
            case pf::track_event::kName:
                if (event.type() == wire::kLength) name = keep(event.bytes());
                break;
            case pf::track_event::kSourceLocationIid: {
                const auto found = sequence.locations.find(event.value());
                if (found != sequence.locations.end()) location = found->second;
                break;
            }
            case pf::track_event::kDebugAnnotations: {
                if (event.type() != wire::kLength) break;
                ProtoReader annotation = event.nested();
                std::string key;
                std::string value;
                while (annotation.next()) {
                    switch (annotation.field()) {
                        case pf::debug_annotation::kName:
                            key = std::string(annotation.bytes());
                            break;
                        case pf::debug_annotation::kNameIid: {
                            const auto found = sequence.annotation_names.find(annotation.value());
                            if (found != sequence.annotation_names.end())
                                key = std::string(found->second);
                            break;
                        }
                        case pf::debug_annotation::kBoolValue:
                            value = annotation.value() != 0 ? "true" : "false";
                            break;
                        case pf::debug_annotation::kUintValue:
                            value = std::to_string(annotation.value());
                            break;
                        case pf::debug_annotation::kIntValue:
                            value = std::to_string(annotation.as_int());
                            break;
                        case pf::debug_annotation::kDoubleValue:
                            value = fmt::format("{}", annotation.as_double());
                            break;
                        case pf::debug_annotation::kStringValue:
                            value = std::string(annotation.bytes());
                            break;
                        default:
                            break;
                    }
                }
                if (!annotation.ok()) return fail("damaged debug annotation");
                if (key == "unfinished" && value == "true") {
                    unfinished = true;
                } else {
                    args.emplace_back(std::move(key), std::move(value));
                }
                break;
            }
            case pf::track_event::kCounterValue:
                counter = static_cast<double>(event.as_int());
                break;
            case pf::track_event::kDoubleCounterValue:
                counter = event.as_double();
                break;
            default:
                break;
        }
    }
    if (!event.ok()) return fail("damaged track event");
    if (!at_ns) return true;  // an event with no time cannot be placed
    // A track gets a state with its first slice: ends, counters and instants on tracks never
    // seen make none (ends on ever new tracks held memory for each).
    auto state = track_states_.find(track_uuid);
    if (state == track_states_.end() && type == pf::track_event::kSliceBegin)
        state = track_states_.emplace(track_uuid, TrackState{}).first;
    if (state != track_states_.end()) {
        state->second.sequence_id = sequence_id;
        state->second.last_ns = *at_ns;
    }
    switch (type) {
        case pf::track_event::kSliceBegin: {
            TrackState& track = state->second;
            track.open.push_back(OpenSlice{name, location, *at_ns, unfinished, std::move(args)});
            if (on_begin) on_begin(track_uuid, name, *at_ns);
            break;
        }
        case pf::track_event::kSliceEnd: {
            if (state != track_states_.end() && !state->second.open.empty())
                end_slice(track_uuid, state->second, *at_ns, unfinished, &args);
            break;
        }
        case pf::track_event::kCounter:
            if (counter && on_counter) on_counter(DecodedCounter{track_uuid, *at_ns, *counter});
            break;
        case pf::track_event::kInstant:
            if (on_instant) on_instant(DecodedInstant{track_uuid, name, *at_ns, std::move(args)});
            break;
        default:
            break;
    }
    return true;
}

bool PerfettoReader::compressed(std::string_view bytes) {
    if (nesting_ > 0) return fail("damaged trace: compressed packets inside compressed packets");
    ++nesting_;
    const bool ok = inflate_packets(bytes);
    --nesting_;
    return ok;
}

// Inflates zlib, gzip or raw deflate data (a Trace of its own: whole packets only) and reads
// its packets as they come out: memory for the largest of them, not for all (1 MB of
// deflated zeros took 1 GB before it was found damaged).
bool PerfettoReader::inflate_packets(std::string_view in) {
    for (const int window : {15 + 32, -15}) {
        z_stream stream{};
        if (inflateInit2(&stream, window) != Z_OK)
            return fail("damaged trace: compressed packets do not inflate");
        stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        stream.avail_in = static_cast<uInt>(in.size());
        std::string inflated;
        std::uint64_t needed = 0;
        int status = Z_OK;
        bool ok = true;
        char block[1 << 16];
        while (ok && status == Z_OK) {
            stream.next_out = reinterpret_cast<Bytef*>(block);
            stream.avail_out = sizeof block;
            status = inflate(&stream, Z_NO_FLUSH);
            if (status != Z_OK && status != Z_STREAM_END) break;
            inflated.append(block, sizeof block - stream.avail_out);
            if (inflated.size() < needed && status == Z_OK) continue;
            std::size_t at = 0;
            ok = read_fields(inflated, at, needed);
            inflated.erase(0, at);
        }
        const bool nothing_out = stream.total_out == 0;
        inflateEnd(&stream);
        if (!ok) return false;
        if (status == Z_STREAM_END) {
            if (!inflated.empty())
                return fail("damaged trace: compressed packets hold a damaged packet");
            return true;
        }
        // Not zlib or gzip: raw deflate is tried next, if nothing came out yet.
        if (!nothing_out) break;
    }
    return fail("damaged trace: compressed packets do not inflate");
}

bool PerfettoReader::trace_attributes(std::string_view bytes) {
    ProtoReader attributes(bytes);
    while (attributes.next()) {
        if (attributes.field() != pf::trace_attributes::kAttribute ||
            attributes.type() != wire::kLength)
            continue;
        ProtoReader attribute = attributes.nested();
        std::string key, value;
        while (attribute.next()) {
            if (attribute.field() == pf::trace_attributes::kKey)
                key = std::string(attribute.bytes());
            if (attribute.field() == pf::trace_attributes::kStringValue)
                value = std::string(attribute.bytes());
            if (attribute.field() == pf::trace_attributes::kLongValue)
                value = std::to_string(attribute.as_int());
        }
        if (!attribute.ok()) return fail("damaged trace attributes");
        if (key == kTraceOpening) {
            closing_due_ = true;
            continue;  // the mark says nothing of the recording
        }
        if (key == kTraceClosing) closing_due_ = false;
        // A trace's metadata is some dozens of keys (one more for each trace combined):
        // past kMostMetadata, repeated packets of it would only hold memory.
        if (metadata_.size() < kMostMetadata)
            metadata_.emplace_back(std::move(key), std::move(value));
    }
    return attributes.ok() || fail("damaged trace attributes");
}

bool PerfettoReader::packet(std::string_view bytes) {
    ++packets_;
    std::optional<std::uint64_t> timestamp;
    std::uint32_t clock_id = 0;
    std::uint32_t sequence_id = 0;
    std::uint32_t flags = 0;
    std::string_view event, interned, snapshot, defaults, descriptor, packed, attributes;
    ProtoReader packet(bytes);
    while (packet.next()) {
        switch (packet.field()) {
            case pf::packet::kTimestamp:
                timestamp = packet.value();
                break;
            case pf::packet::kTimestampClockId:
                clock_id = static_cast<std::uint32_t>(packet.value());
                break;
            case pf::packet::kTrustedPacketSequenceId:
                sequence_id = static_cast<std::uint32_t>(packet.value());
                break;
            case pf::packet::kSequenceFlags:
                flags = static_cast<std::uint32_t>(packet.value());
                break;
            case pf::packet::kTrackEvent:
                event = packet.bytes();
                break;
            case pf::packet::kInternedData:
                interned = packet.bytes();
                break;
            case pf::packet::kClockSnapshot:
                snapshot = packet.bytes();
                break;
            case pf::packet::kTracePacketDefaults:
                defaults = packet.bytes();
                break;
            case pf::packet::kTrackDescriptor:
                descriptor = packet.bytes();
                break;
            case pf::packet::kCompressedPackets:
                packed = packet.bytes();
                break;
            case pf::packet::kTraceAttributes:
                attributes = packet.bytes();
                break;
            default:
                break;
        }
    }
    if (!packet.ok()) return fail(fmt::format("damaged trace: packet {} is damaged", packets_));
    if (!packed.empty()) return compressed(packed);
    if (!attributes.empty() && !trace_attributes(attributes)) return false;
    // A packet with nothing for its sequence's state makes none: a file of 16 MB, each of
    // its packets naming a new sequence and nothing else, took 568 MB; a time alone, or flags
    // alone, say nothing of a sequence not seen yet either (4 MB of such packets took 864
    // MB).
    if (defaults.empty() && snapshot.empty() && interned.empty() && event.empty() &&
        ((flags == 0 && !timestamp) || sequences_.find(sequence_id) == sequences_.end())) {
        return descriptor.empty() || track_descriptor(descriptor);
    }
    Sequence& sequence = sequences_[sequence_id];
    if ((flags & pf::packet::kSeqIncrementalStateCleared) != 0) {
        sequence.names.clear();
        sequence.locations.clear();
        sequence.annotation_names.clear();
        sequence.clocks.clear();
        sequence.default_clock = 0;
        sequence.default_track = 0;
    }
    if (!defaults.empty()) {
        ProtoReader fields(defaults);
        while (fields.next()) {
            if (fields.field() == pf::defaults::kTimestampClockId) {
                sequence.default_clock = static_cast<std::uint32_t>(fields.value());
            } else if (fields.field() == pf::defaults::kTrackEventDefaults &&
                       fields.type() == wire::kLength) {
                ProtoReader inner = fields.nested();
                while (inner.next()) {
                    if (inner.field() == pf::track_event_defaults::kTrackUuid)
                        sequence.default_track = inner.value();
                }
            }
        }
        if (!fields.ok()) return fail("damaged packet defaults");
    }
    if (!snapshot.empty() && !clock_snapshot(sequence, snapshot)) return false;
    if (!interned.empty() && !interned_data(sequence, interned)) return false;
    if (!descriptor.empty() && !track_descriptor(descriptor)) return false;
    std::optional<std::int64_t> at_ns;
    if (timestamp) {
        const std::uint32_t clock = clock_id != 0                 ? clock_id
                                    : sequence.default_clock != 0 ? sequence.default_clock
                                                                  : pf::clock::kBoottime;
        if (!to_monotonic(sequence, clock, *timestamp, at_ns)) return false;
    }
    if (at_ns) sequence.last_ns = *at_ns;
    if (!event.empty()) return track_event(sequence, sequence_id, event, at_ns);
    return true;
}

void PerfettoReader::end_slice(std::uint64_t track_uuid, TrackState& track, std::int64_t end_ns,
                               bool unfinished, DecodedArgs* end_args) {
    OpenSlice& open = track.open.back();
    if (end_args != nullptr && !end_args->empty()) {
        std::move(end_args->begin(), end_args->end(), std::back_inserter(open.args));
    }
    if (on_slice) {
        DecodedSlice slice;
        slice.track_uuid = track_uuid;
        slice.name = open.name;
        if (open.location != nullptr) {
            slice.file = open.location->file;
            slice.line = open.location->line;
        }
        slice.begin_ns = open.begin_ns;
        slice.end_ns = std::max(end_ns, open.begin_ns);
        slice.depth = static_cast<std::uint32_t>(track.open.size() - 1);
        slice.unfinished = open.unfinished || unfinished;
        if (!open.args.empty()) slice.args = &open.args;
        on_slice(slice);
    }
    track.open.pop_back();
}

void PerfettoReader::close_open_calls() {
    for (auto& [uuid, track] : track_states_) {
        while (!track.open.empty()) end_slice(uuid, track, track.last_ns, true);
    }
}

std::optional<std::int64_t> PerfettoReader::realtime_offset_ns() const {
    const auto found = builtin_offsets_.find(pf::clock::kRealtime);
    // One past the times a trace may hold is no clock's: as if there were none.
    if (found == builtin_offsets_.end() || found->second > kLongestOffset ||
        found->second < -kLongestOffset) {
        return std::nullopt;
    }
    return found->second;
}

std::vector<OpenCall> PerfettoReader::open_calls() const {
    std::vector<OpenCall> result;
    for (const auto& [uuid, track] : track_states_) {
        for (const auto& open : track.open)
            result.push_back(OpenCall{uuid, std::string(open.name), open.begin_ns});
    }
    return result;
}

std::vector<PerfettoReader::SequenceEnd> PerfettoReader::sequence_ends() const {
    std::vector<SequenceEnd> result;
    for (const auto& [uuid, track] : track_states_) {
        result.push_back(SequenceEnd{track.sequence_id, uuid, track.last_ns, track.open.size(),
                                     is_named_track(uuid)});
    }
    return result;
}

}  // namespace vztrace::format
