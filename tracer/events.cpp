#include "tracer/events.hpp"

#include <algorithm>
#include <cstring>
#include <string>

namespace vztrace::tracer::events {

namespace {

// What an event's arguments may take (ThreadBuffer::kMaxRawBytes with their size before
// them), and the room kept there for saying how many did not fit.
constexpr std::size_t kArgsRoom = ThreadBuffer::kMaxRawBytes - sizeof(std::uint32_t);
constexpr std::size_t kCutRoom = 128;
constexpr const char* kCutName = "vztrace: not recorded";

std::size_t encoded_size(const Arg& arg) {
    return 2 * sizeof(std::uint32_t) + arg.first.size() + arg.second.size();
}

// `args` encoded whole, or as many as fit and an argument saying how many more there were
// (40 long reprs of a call's: the last 9 were left out without a word).
std::string encoded_within_room(const std::vector<Arg>& args) {
    std::size_t total = 0;
    for (const Arg& arg : args) total += encoded_size(arg);
    if (total <= kArgsRoom) return format::encode_args(args);
    std::vector<Arg> kept;
    std::size_t used = 0;
    for (const Arg& arg : args) {
        if (used + encoded_size(arg) > kArgsRoom - kCutRoom) break;
        used += encoded_size(arg);
        kept.push_back(arg);
    }
    const std::size_t left = args.size() - kept.size();
    kept.emplace_back(kCutName, std::to_string(left) + (left == 1 ? " argument" : " arguments") +
                                    " more: an event's arguments take at most 16 KiB");
    return format::encode_args(kept);
}

}  // namespace

void args_for_next(Session& session, const std::vector<Arg>& args, std::uint64_t ticks) {
    if (args.empty()) return;
    std::string bytes(sizeof(std::uint32_t), '\0');
    bytes += encoded_within_room(args);
    static_assert(ThreadBuffer::kMaxRawBytes == 16 * 1024, "the cut's text names the room");
    const auto size = static_cast<std::uint32_t>(bytes.size() - sizeof(std::uint32_t));
    std::memcpy(bytes.data(), &size, sizeof size);
    const auto raw = static_cast<SymbolId>(format::raw_records_for(bytes.size()));
    session.current_buffer().append_with_raw(ticks, raw, EventKind::kArgs, bytes.data(),
                                             bytes.size());
}

namespace {

// An event of `kind` now, with `args` before it.
void append_with_args(Session& session, SymbolId id, EventKind kind, const std::vector<Arg>& args) {
    const std::uint64_t now = TickClock::now();
    args_for_next(session, args, now);
    session.current_buffer().append(now, id, kind);
}

}  // namespace

void instant(Session& session, std::string_view name, const std::vector<Arg>& args) {
    append_with_args(session, session.symbols().intern(name), EventKind::kInstant, args);
}

void counter(Session& session, std::string_view name, double value) {
    const SymbolId id = session.symbols().intern(name);
    session.current_buffer().append_with_raw(TickClock::now(), id, EventKind::kCounter, &value,
                                             sizeof value);
}

SymbolId span_begin(Session& session, std::string_view name, const std::vector<Arg>& args) {
    const SymbolId id = session.symbols().intern(name);
    append_with_args(session, id, EventKind::kEnter, args);
    return id;
}

void span_end(Session& session, SymbolId span, const std::vector<Arg>& args) {
    append_with_args(session, span, EventKind::kExit, args);
}

void track_begin(Session& session, std::string_view track, std::string_view name,
                 const std::vector<Arg>& args) {
    const SymbolId track_id = session.symbols().intern(track);
    const SymbolId name_id = session.symbols().intern(name);
    const std::uint64_t now = TickClock::now();
    args_for_next(session, args, now);
    session.current_buffer().append_with_raw(now, name_id, EventKind::kTrackEnter, &track_id,
                                             sizeof track_id);
}

void track_end(Session& session, std::string_view track, const std::vector<Arg>& args) {
    append_with_args(session, session.symbols().intern(track), EventKind::kTrackExit, args);
}

}  // namespace vztrace::tracer::events
