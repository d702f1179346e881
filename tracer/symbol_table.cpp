#include "tracer/symbol_table.hpp"

#include <fmt/format.h>

#include <cstdlib>

namespace vztrace::tracer {

SymbolId SymbolTable::add(std::string name) {
    const std::lock_guard lock(mutex_);
    symbols_.emplace_back(std::move(name));
    return static_cast<SymbolId>(symbols_.size() - 1);
}

SymbolId SymbolTable::intern(std::string_view name) {
    {
        const std::lock_guard lock(mutex_);
        const auto found = interned_.find(name);
        if (found != interned_.end()) return found->second;
    }
    const SymbolId id = add(std::string(name));
    const std::lock_guard lock(mutex_);
    return interned_.try_emplace(std::string(name), id).first->second;
}

SymbolTable::~SymbolTable() {
    for (auto& page : flag_pages_) std::free(page.load(std::memory_order_relaxed));
}

void SymbolTable::add_flags(SymbolId id, std::uint8_t flags, std::uint64_t since) {
    {
        const std::lock_guard lock(mutex_);
        if (id >= symbols_.size()) return;
        // Written before the flag is: whoever sees the flag finds its time.
        const std::uint8_t had = this->flags(id);
        for (const SymbolFlag flag : {kIgnoreSubtree, kSparse}) {
            if ((flags & flag) == 0 || (had & flag) != 0 || since == 0) continue;
            flagged_since_[id][flag == kIgnoreSubtree ? 0 : 1] = since;
        }
        auto& slot = flag_pages_[id >> kFlagPageBits];
        std::uint8_t* page = slot.load(std::memory_order_relaxed);
        if (page == nullptr) {
            page = static_cast<std::uint8_t*>(std::calloc(kFlagPageSize, 1));  // pages untouched
            if (page == nullptr) return;
            slot.store(page, std::memory_order_release);
        }
        std::atomic_ref<std::uint8_t>(page[id & (kFlagPageSize - 1)])
            .fetch_or(flags, std::memory_order_release);
    }
    any_flags_.fetch_or(flags, std::memory_order_release);
}

std::uint64_t SymbolTable::flagged_since(SymbolId id, SymbolFlag flag) const {
    const std::lock_guard lock(mutex_);
    const auto found = flagged_since_.find(id);
    return found == flagged_since_.end() ? 0 : found->second[flag == kIgnoreSubtree ? 0 : 1];
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
