// What is recorded beyond calls: the arguments of a call, instants, counters, spans of the
// program's own choosing and slices on tracks of their own (see format/record.hpp). Each
// goes to the calling thread's buffer, at the time of the call; the in-script `vztrace`
// module and the --log-* options use these. No Python.h.
#pragma once

#include <cstdint>
#include <mutex>
#include <string_view>
#include <vector>

#include "tracer/clock.hpp"
#include "tracer/format/record.hpp"
#include "tracer/session.hpp"

namespace vztrace::tracer::events {

using format::Arg;

// Arguments for the thread's next event (its enter, exit, instant or span), which must
// follow at once. Nothing is recorded for an empty list.
void args_for_next(Session& session, const std::vector<Arg>& args, std::uint64_t ticks);

// An instant on the thread's track.
void instant(Session& session, std::string_view name, const std::vector<Arg>& args);

// A sample of counter `name` (one counter track per name, in the process).
void counter(Session& session, std::string_view name, double value);

// A slice of the program's own on the thread's track, nested with the calls around it.
// Returns its symbol, which span_end takes.
format::SymbolId span_begin(Session& session, std::string_view name, const std::vector<Arg>& args);
void span_end(Session& session, format::SymbolId span, const std::vector<Arg>& args);

// A slice on the process's track named `track` (an asyncio task's).
void track_begin(Session& session, std::string_view track, std::string_view name,
                 const std::vector<Arg>& args);
void track_end(Session& session, std::string_view track, const std::vector<Arg>& args);

}  // namespace vztrace::tracer::events
