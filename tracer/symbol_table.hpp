// SymbolTable: every function seen, interned once at first sight. Entries never move or
// change once added, so the writer thread reads them while hooks add more.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "tracer/format/perfetto_encoder.hpp"
#include "tracer/format/record.hpp"

namespace vztrace::tracer {

using format::SymbolId;

// Code that is never recorded (the launcher's own frames) carries this id.
inline constexpr SymbolId kHiddenSymbol = 0xFFFFFFFFU;

struct Symbol {
    std::string name;  // VizTracer's spelling: "qualname (/abs/file.py:12)", "builtins.len"
};

class SymbolTable {
 public:
    // A C function, or anything named by its name alone.
    SymbolId add(std::string name);
    // A Python function: named "qualname (/abs/file.py:line)".
    SymbolId add_python(const std::string& qualname, const std::string& file, std::uint32_t line);
    // The symbol's fields as an encoder reads them; valid for the table's life.
    format::SymbolInfo info(SymbolId id) const;
    std::size_t size() const;

 private:
    mutable std::mutex mutex_;
    std::deque<Symbol> symbols_;
};

}  // namespace vztrace::tracer
