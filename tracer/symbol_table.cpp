#include "tracer/symbol_table.hpp"

namespace vztrace::tracer {

SymbolId SymbolTable::add(std::string name) {
    const std::lock_guard lock(mutex_);
    names_.push_back(std::move(name));
    return static_cast<SymbolId>(names_.size() - 1);
}

std::vector<std::string> SymbolTable::names() const {
    const std::lock_guard lock(mutex_);
    return {names_.begin(), names_.end()};
}

std::size_t SymbolTable::size() const {
    const std::lock_guard lock(mutex_);
    return names_.size();
}

}  // namespace vztrace::tracer
