// Record: one event as a hook stores it. The unit every buffer holds and every encoder
// reads; plain data, no interpreter.
#pragma once

#include <cstdint>

namespace vztrace::format {

using SymbolId = std::uint32_t;

enum class EventKind : std::uint32_t {
    kEnter = 0,
    kExit = 1,
    kExitByException = 2,  // PY_UNWIND / C_RAISE / a 3.11 return with an exception set
};

struct Record {
    std::uint64_t ticks;
    SymbolId symbol;
    EventKind kind;
};
static_assert(sizeof(Record) == 16);

}  // namespace vztrace::format
