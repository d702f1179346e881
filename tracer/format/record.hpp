// Record: one event as a hook stores it. The unit every buffer holds and every encoder
// reads; plain data, no interpreter.
//
// Calls are a record each (enter, exit). What else the program or an option records
// (instants, counters, spans on tracks of their own, the arguments of a call) takes a
// record whose kind says so, and some take raw records after it: a kArgs record is
// followed by `symbol` raw records holding `ticks` bytes of encoded arguments
// (encode_args), which belong to the next event of the thread. An event and its raw
// records are never split across chunks.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vztrace::format {

using SymbolId = std::uint32_t;

enum class EventKind : std::uint32_t {
    kEnter = 0,
    kExit = 1,
    kExitByException = 2,  // PY_UNWIND / C_RAISE / a 3.11 return with an exception set
    // Arguments of the thread's next event: `ticks` bytes in `symbol` raw records after.
    kArgs = 3,
    kInstant = 4,  // symbol: the instant's name
    // A counter's sample: symbol names the counter (one track per name and process); one
    // raw record after holds the value (a double in its first 8 bytes).
    kCounter = 5,
    // A slice on a track of its own (an asyncio task): symbol is the slice's name; one raw
    // record after holds the track's name symbol (a SymbolId in its first 4 bytes).
    kTrackEnter = 6,
    kTrackExit = 7,
};

// Whether records of this kind are calls of the thread's own stack.
constexpr bool is_call_event(EventKind kind) { return kind <= EventKind::kExitByException; }

struct Record {
    std::uint64_t ticks;
    SymbolId symbol;
    EventKind kind;
};
static_assert(sizeof(Record) == 16);

// How many raw records follow `record` (0 for most kinds).
constexpr std::size_t raw_records_after(const Record& record) {
    switch (record.kind) {
        case EventKind::kArgs:
            return record.symbol;
        case EventKind::kCounter:
        case EventKind::kTrackEnter:
            return 1;
        default:
            return 0;
    }
}

// Raw records that hold `bytes` bytes.
constexpr std::size_t raw_records_for(std::size_t bytes) {
    return (bytes + sizeof(Record) - 1) / sizeof(Record);
}

using Arg = std::pair<std::string, std::string>;  // a name and its value, as text

// Arguments as the bytes of a kArgs record: each name and value as a 32-bit length and
// its bytes.
inline std::string encode_args(const std::vector<Arg>& args) {
    std::string out;
    const auto put = [&out](std::string_view text) {
        const auto size = static_cast<std::uint32_t>(text.size());
        out.append(reinterpret_cast<const char*>(&size), sizeof size);
        out.append(text);
    };
    for (const auto& [name, value] : args) {
        put(name);
        put(value);
    }
    return out;
}

// The arguments encode_args wrote; whatever does not parse is left out.
inline std::vector<Arg> decode_args(std::string_view bytes) {
    std::vector<Arg> args;
    const auto take = [&bytes](std::string_view& text) {
        std::uint32_t size = 0;
        if (bytes.size() < sizeof size) return false;
        std::memcpy(&size, bytes.data(), sizeof size);
        if (bytes.size() - sizeof size < size) return false;
        text = bytes.substr(sizeof size, size);
        bytes.remove_prefix(sizeof size + size);
        return true;
    };
    std::string_view name, value;
    while (take(name) && take(value)) args.emplace_back(std::string(name), std::string(value));
    return args;
}

}  // namespace vztrace::format
