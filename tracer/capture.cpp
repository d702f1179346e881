#include "tracer/capture.hpp"

#include <algorithm>

namespace vztrace::tracer {

void for_each_slice(const ThreadCapture& thread, std::uint64_t end_ticks,
                    const std::function<void(const Slice&)>& emit) {
    struct Open {
        SymbolId symbol;
        std::uint64_t begin;
    };
    std::vector<Open> stack;
    stack.reserve(256);
    std::uint64_t last_ticks = 0;
    for (const auto& chunk : thread.chunks) {
        for (const Record& record : chunk) {
            last_ticks = record.ticks;
            if (record.kind == EventKind::kEnter) {
                stack.push_back(Open{record.symbol, record.ticks});
                continue;
            }
            if (stack.empty()) continue;
            if (stack.back().symbol != record.symbol) {
                const auto match = std::find_if(stack.rbegin(), stack.rend(), [&](const Open& o) {
                    return o.symbol == record.symbol;
                });
                if (match == stack.rend()) continue;
                const std::size_t keep = static_cast<std::size_t>(stack.rend() - match);
                while (stack.size() > keep) {
                    emit(Slice{stack.back().symbol, stack.back().begin, record.ticks, true});
                    stack.pop_back();
                }
            }
            emit(Slice{stack.back().symbol, stack.back().begin, record.ticks, false});
            stack.pop_back();
        }
    }
    // After the memory cap, nothing later is known: close at the last record instead.
    const std::uint64_t close_at = thread.dropped > 0 ? last_ticks : std::max(end_ticks, last_ticks);
    while (!stack.empty()) {
        emit(Slice{stack.back().symbol, stack.back().begin, close_at, true});
        stack.pop_back();
    }
}

std::uint64_t count_events(const Capture& capture) {
    std::uint64_t total = 0;
    for (const auto& process : capture.processes) {
        for (const auto& thread : process.threads) {
            for (const auto& chunk : thread.chunks) total += chunk.size();
        }
    }
    return total;
}

std::uint64_t count_dropped(const Capture& capture) {
    std::uint64_t total = 0;
    for (const auto& process : capture.processes) {
        for (const auto& thread : process.threads) total += thread.dropped;
    }
    return total;
}

}  // namespace vztrace::tracer
