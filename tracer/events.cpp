#include "tracer/events.hpp"

#include <algorithm>
#include <cstring>
#include <string>

namespace vztrace::tracer::events {

void args_for_next(Session& session, const std::vector<Arg>& args, std::uint64_t ticks) {
    if (args.empty()) return;
    std::string bytes(sizeof(std::uint32_t), '\0');
    bytes += format::encode_args(args);
    bytes.resize(std::min(bytes.size(), ThreadBuffer::kMaxRawBytes));
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
