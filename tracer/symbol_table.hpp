// SymbolTable: every function seen, interned once at first sight. Entries never move or
// change once added, so the writer thread reads them while hooks add more.
#pragma once

#include <array>
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

    SymbolTable() = default;
    SymbolTable(const SymbolTable&) = delete;
    SymbolTable& operator=(const SymbolTable&) = delete;
    ~SymbolTable();

    // Flags the symbol from `since` (ticks) on: the calls begun before keep what they were
    // (vztrace.ignore(f) after f ran leaves f's earlier calls in). A flag given again keeps
    // its first time.
    void add_flags(SymbolId id, std::uint8_t flags, std::uint64_t since = 0);
    // When the symbol got `flag` (0: from the start); read once the flag is seen.
    std::uint64_t flagged_since(SymbolId id, SymbolFlag flag) const;
    // Read by the writer at each call's enter once some symbol has a flag (see any_flag),
    // while hooks add symbols: without a lock, two loads.
    std::uint8_t flags(SymbolId id) const {
        std::uint8_t* page = flag_pages_[id >> kFlagPageBits].load(std::memory_order_acquire);
        if (page == nullptr) return 0;
        return std::atomic_ref<std::uint8_t>(page[id & (kFlagPageSize - 1)])
            .load(std::memory_order_acquire);
    }
    // Whether any symbol has `flag` (so the writer need not look).
    bool any_flag(std::uint8_t flag) const {
        return (any_flags_.load(std::memory_order_acquire) & flag) != 0;
    }

 private:
    mutable std::mutex mutex_;
    std::deque<Symbol> symbols_;
    struct NameHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view name) const {
            return std::hash<std::string_view>{}(name);
        }
    };
    // Looked up by string_view: a span or instant of the API costs no string copy.
    std::unordered_map<std::string, SymbolId, NameHash, std::equal_to<>> interned_;
    std::atomic<std::uint8_t> any_flags_{0};
    // Flags given after the start, by symbol: when each was (kIgnoreSubtree, kSparse).
    std::unordered_map<SymbolId, std::array<std::uint64_t, 2>> flagged_since_;
    // Flags in pages of 2^20 symbols, allocated (zeroed, under the lock) when a symbol of
    // the page first has one; 4096 pages cover every SymbolId.
    static constexpr unsigned kFlagPageBits = 20;
    static constexpr std::size_t kFlagPageSize = std::size_t{1} << kFlagPageBits;
    std::array<std::atomic<std::uint8_t*>, (std::size_t{1} << 32) / kFlagPageSize> flag_pages_{};
};

}  // namespace vztrace::tracer
