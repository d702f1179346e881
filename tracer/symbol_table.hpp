// SymbolTable: every function seen, interned once at first sight. Entries never move or
// change once added, so the writer thread reads them while hooks add more.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tracer/format/perfetto_encoder.hpp"
#include "tracer/format/record.hpp"

namespace vztrace::tracer {

using format::SymbolId;

// Code that is never recorded (the launcher's own frames) carries this id.
inline constexpr SymbolId kHiddenSymbol = 0xFFFFFFFFU;

// What the in-script API says of a function (@vztrace.ignore, @vztrace.sparse).
enum SymbolFlag : std::uint8_t {
    kIgnoreSubtree = 1,  // the call and everything it calls are left out
    kSparse = 2,         // recorded under --log-sparse
};

struct Symbol {
    explicit Symbol(std::string text) : name(std::move(text)) {}
    std::string name;  // VizTracer's spelling: "qualname (/abs/file.py:12)", "builtins.len"
    std::atomic<std::uint8_t> flags{0};
};

class SymbolTable {
 public:
    // A C function, or anything named by its name alone.
    SymbolId add(std::string name);
    // The symbol named `name`, added once (instants, counters, spans, tracks).
    SymbolId intern(std::string_view name);
    // A Python function: named "qualname (/abs/file.py:line)".
    SymbolId add_python(const std::string& qualname, const std::string& file, std::uint32_t line);
    // The symbol's fields as an encoder reads them; valid for the table's life.
    format::SymbolInfo info(SymbolId id) const;
    std::size_t size() const;

    void add_flags(SymbolId id, std::uint8_t flags);
    // Read by the writer while hooks add symbols (under the table's lock: the writer asks
    // only once some symbol has a flag, see any_flag).
    std::uint8_t flags(SymbolId id) const;
    // Whether any symbol has `flag` (so the writer need not look).
    bool any_flag(std::uint8_t flag) const {
        return (any_flags_.load(std::memory_order_acquire) & flag) != 0;
    }

 private:
    mutable std::mutex mutex_;
    std::deque<Symbol> symbols_;
    std::unordered_map<std::string, SymbolId> interned_;
    std::atomic<std::uint8_t> any_flags_{0};
};

}  // namespace vztrace::tracer
