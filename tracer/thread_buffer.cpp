#include "tracer/thread_buffer.hpp"

#include <algorithm>

namespace vztrace::tracer {
namespace {

// A thread's first chunk is small (many programs have many short threads); each next one
// doubles up to 1 MiB, so the slow path runs once per 65536 events at most.
constexpr std::size_t kFirstChunkRecords = 4096;
constexpr std::size_t kMaxChunkRecords = 65536;

}  // namespace

bool MemoryBudget::take(std::uint64_t bytes) {
    if (exhausted()) return false;
    const std::uint64_t before = used_.fetch_add(bytes, std::memory_order_relaxed);
    if (before + bytes <= limit_) return true;
    used_.fetch_sub(bytes, std::memory_order_relaxed);
    exhausted_.store(true, std::memory_order_relaxed);
    return false;
}

void ThreadBuffer::append_slow(Record record) {
    const std::size_t capacity =
        chunks_.empty() ? kFirstChunkRecords
                        : std::min(chunks_.back().capacity * 2, kMaxChunkRecords);
    if (!budget_.take(capacity * sizeof(Record))) {
        ++dropped_;
        return;
    }
    chunks_.push_back(Chunk{std::make_unique_for_overwrite<Record[]>(capacity), capacity});
    next_ = chunks_.back().records.get();
    end_ = next_ + capacity;
    *next_++ = record;
}

std::vector<std::span<const Record>> ThreadBuffer::chunks() const {
    std::vector<std::span<const Record>> result;
    result.reserve(chunks_.size());
    for (std::size_t i = 0; i < chunks_.size(); ++i) {
        const Record* begin = chunks_[i].records.get();
        const std::size_t used = i + 1 == chunks_.size()
                                     ? static_cast<std::size_t>(next_ - begin)
                                     : chunks_[i].capacity;
        result.emplace_back(begin, used);
    }
    return result;
}

std::uint64_t ThreadBuffer::size() const {
    std::uint64_t total = 0;
    for (const auto& chunk : chunks()) total += chunk.size();
    return total;
}

}  // namespace vztrace::tracer
