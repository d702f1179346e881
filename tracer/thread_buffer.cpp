#include "tracer/thread_buffer.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>

namespace vztrace::tracer {
namespace {

// A thread's first chunk is small (many programs have many short threads); each next one
// doubles up to 2 MiB, one huge page, so the slow path runs once per 131072 events at most.
constexpr std::size_t kFirstChunkRecords = 4096;
constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kMaxChunkRecords = kHugePage / sizeof(Record);

// Maps `bytes` of populated memory; full-size chunks are aligned for a huge page.
Record* map_records(std::size_t bytes) {
    const bool huge = bytes == kHugePage;
    const std::size_t span = huge ? bytes * 2 : bytes;
    void* base = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return nullptr;
    auto* begin = static_cast<char*>(base);
    if (huge) {  // keep the aligned 2 MiB inside the 4 MiB mapping
        const auto address = reinterpret_cast<std::uintptr_t>(begin);
        char* aligned = begin + ((kHugePage - address % kHugePage) % kHugePage);
        if (aligned > begin) ::munmap(begin, static_cast<std::size_t>(aligned - begin));
        const std::size_t tail = static_cast<std::size_t>(begin + span - (aligned + bytes));
        if (tail > 0) ::munmap(aligned + bytes, tail);
        begin = aligned;
        ::madvise(begin, bytes, MADV_HUGEPAGE);
    }
    // Touch now, in one pass, rather than fault on the hot path.
    ::madvise(begin, bytes, MADV_WILLNEED);
    for (std::size_t offset = 0; offset < bytes; offset += 4096) begin[offset] = 0;
    return reinterpret_cast<Record*>(begin);
}

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
    const std::size_t capacity = chunks_.empty()
                                     ? kFirstChunkRecords
                                     : std::min(chunks_.back().capacity * 2, kMaxChunkRecords);
    if (!budget_.take(capacity * sizeof(Record))) {
        ++dropped_;
        return;
    }
    const std::size_t bytes = capacity * sizeof(Record);
    Record* memory = map_records(bytes);
    if (memory == nullptr) {
        ++dropped_;
        return;
    }
    chunks_.push_back(
        Chunk{std::unique_ptr<Record[], ChunkMemory>(memory, ChunkMemory{bytes}), capacity});
    next_ = chunks_.back().records.get();
    end_ = next_ + capacity;
    *next_++ = record;
}

void ThreadBuffer::ChunkMemory::operator()(Record* records) const { ::munmap(records, bytes); }

std::vector<std::span<const Record>> ThreadBuffer::chunks() const {
    std::vector<std::span<const Record>> result;
    result.reserve(chunks_.size());
    for (std::size_t i = 0; i < chunks_.size(); ++i) {
        const Record* begin = chunks_[i].records.get();
        const std::size_t used =
            i + 1 == chunks_.size() ? static_cast<std::size_t>(next_ - begin) : chunks_[i].capacity;
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
