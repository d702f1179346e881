// SymbolTable: the name of every function seen, interned once at first sight.
#pragma once

#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "tracer/thread_buffer.hpp"

namespace vztrace::tracer {

// Code that is never recorded (the launcher's own frames) carries this id.
inline constexpr SymbolId kHiddenSymbol = 0xFFFFFFFFU;

class SymbolTable {
 public:
    SymbolId add(std::string name);
    std::vector<std::string> names() const;  // index = SymbolId
    std::size_t size() const;

 private:
    mutable std::mutex mutex_;
    std::deque<std::string> names_;
};

}  // namespace vztrace::tracer
