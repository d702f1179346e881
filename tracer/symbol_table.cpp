#include "tracer/symbol_table.hpp"

#include <fmt/format.h>

namespace vztrace::tracer {

SymbolId SymbolTable::add(std::string name) {
    const std::lock_guard lock(mutex_);
    symbols_.emplace_back(std::move(name));
    return static_cast<SymbolId>(symbols_.size() - 1);
}

SymbolId SymbolTable::intern(std::string_view name) {
    {
        const std::lock_guard lock(mutex_);
        const auto found = interned_.find(std::string(name));
        if (found != interned_.end()) return found->second;
    }
    const SymbolId id = add(std::string(name));
    const std::lock_guard lock(mutex_);
    return interned_.try_emplace(std::string(name), id).first->second;
}

void SymbolTable::add_flags(SymbolId id, std::uint8_t flags) {
    {
        const std::lock_guard lock(mutex_);
        if (id >= symbols_.size()) return;
        symbols_[id].flags.fetch_or(flags, std::memory_order_release);
    }
    any_flags_.fetch_or(flags, std::memory_order_release);
}

std::uint8_t SymbolTable::flags(SymbolId id) const {
    const std::lock_guard lock(mutex_);
    if (id >= symbols_.size()) return 0;
    return symbols_[id].flags.load(std::memory_order_acquire);
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
