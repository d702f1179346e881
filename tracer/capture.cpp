#include "tracer/capture.hpp"

namespace vztrace::tracer {

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
