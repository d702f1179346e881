// NameTable: names interned to small ids, in the order first seen. No Python.h.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

namespace vztrace::format {

class NameTable {
 public:
    std::uint32_t id(std::string_view name) {
        const auto found = ids_.find(name);
        if (found != ids_.end()) return found->second;
        const auto id = static_cast<std::uint32_t>(names_.size());
        names_.emplace_back(name);
        ids_.emplace(names_.back(), id);  // the deque keeps the string where it is
        return id;
    }
    const std::string& name(std::uint32_t id) const { return names_[id]; }
    std::size_t size() const { return names_.size(); }

 private:
    std::deque<std::string> names_;
    std::unordered_map<std::string_view, std::uint32_t> ids_;
};

}  // namespace vztrace::format
