#include "tracer/symbol_table.hpp"

#include <fmt/format.h>

namespace vztrace::tracer {

SymbolId SymbolTable::add(std::string name) {
    const std::lock_guard lock(mutex_);
    symbols_.push_back(Symbol{std::move(name)});
    return static_cast<SymbolId>(symbols_.size() - 1);
}

SymbolId SymbolTable::add_python(const std::string& qualname, const std::string& file,
                                 std::uint32_t line) {
    return add(fmt::format("{} ({}:{})", qualname, file, line));
}

format::SymbolInfo SymbolTable::info(SymbolId id) const {
    const std::lock_guard lock(mutex_);
    if (id >= symbols_.size()) return format::SymbolInfo{"?"};
    return format::SymbolInfo{symbols_[id].name};
}

std::size_t SymbolTable::size() const {
    const std::lock_guard lock(mutex_);
    return symbols_.size();
}

}  // namespace vztrace::tracer
