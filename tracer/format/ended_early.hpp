// EndedEarly: calls a thread's record stream ended before their exit came, so that the exit
// when it comes is known for theirs. The stream holds one stack per thread, and an exit
// that is not the innermost open call's ends the calls above it with it (flagged, or by
// the filters). Where a thread's stacks switch under it (a greenlet suspended in those
// calls, resumed or killed later), their exits still come: one by an exception then
// matched no open call and was taken for a call CPython never said began
// (PerfettoSequence::write_unseen_call), and the call was in the trace twice.
#pragma once

#include <cstdint>
#include <unordered_map>

#include "tracer/compiler.hpp"
#include "tracer/format/record.hpp"

namespace vztrace::format {

class EndedEarly {
 public:
    void add(SymbolId id) {
        if (VZ_UNLIKELY(total_ >= kMost)) {  // exits that never came: forget them
            by_symbol_.clear();
            total_ = 0;
        }
        ++by_symbol_[id];
        ++total_;
    }

    // Whether an exit of `id` that is not the innermost open call's (`innermost`: it is) is
    // the late one of a call of `id` ended early, not the exit of an open call of `id`
    // further down with every call above it: a span left in a generator's frame, which the
    // generator's yield ended; a greenlet's call ended by another's.
    bool late_exit(SymbolId id, bool innermost) const {
        return !innermost && total_ != 0 && by_symbol_.contains(id);
    }

    // Whether an exit of `id` that matches no open call is that of a call ended early
    // (taken off then).
    bool take(SymbolId id) {
        if (total_ == 0) return false;
        const auto found = by_symbol_.find(id);
        if (found == by_symbol_.end()) return false;
        if (--found->second == 0) by_symbol_.erase(found);
        --total_;
        return true;
    }

 private:
    // Bounds the memory of a thread whose calls are ended early again and again without
    // their exits ever coming.
    static constexpr std::uint32_t kMost = 1u << 16;
    std::unordered_map<SymbolId, std::uint32_t> by_symbol_;
    std::uint32_t total_ = 0;
};

}  // namespace vztrace::format
