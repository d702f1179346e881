#include "tracer/chunk_pool.hpp"

#include <sys/mman.h>

#include <algorithm>

namespace vztrace::tracer {
namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;

// Touches each page of [begin, begin + bytes): populated now, in one pass, rather than
// faulted on the hot path.
void populate(char* begin, std::size_t bytes) {
    for (std::size_t offset = 0; offset < bytes; offset += 4096) begin[offset] = 0;
}

// Maps `bytes` of memory, of which the first `populated` are populated; a huge-page-sized
// chunk is aligned for one.
Record* map_records(std::size_t bytes, std::size_t populated) {
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
    populate(begin, populated);
    return reinterpret_cast<Record*>(begin);
}

}  // namespace

void populate_step(Chunk& chunk) {
    const std::size_t step = std::min(chunk.unpopulated, ChunkPool::kPopulateStep);
    populate(reinterpret_cast<char*>(chunk.populated_end()), step * sizeof(Record));
    chunk.unpopulated -= step;
}

ChunkPool::~ChunkPool() {
    for (const auto& chunk : all_) ::munmap(chunk->records, chunk->capacity * sizeof(Record));
}

std::size_t ChunkPool::size_class(std::size_t capacity) {
    std::size_t index = 0;
    while (index + 1 < kSizes && kClassRecords[index] < capacity) ++index;
    return index;
}

void ChunkPool::unmap(Chunk* chunk) {
    ::munmap(chunk->records, chunk->capacity * sizeof(Record));
    mapped_ -= chunk->capacity * sizeof(Record);
    std::erase_if(all_, [&](const auto& c) { return c.get() == chunk; });
}

Chunk* ChunkPool::shrink(Chunk* chunk) {
    const std::size_t fit = kClassRecords[size_class(std::max<std::size_t>(chunk->used, 1))];
    if (fit >= chunk->capacity) return chunk;
    const std::lock_guard lock(mutex_);
    Chunk* small = take_free(fit);
    if (small == nullptr) small = map_new(fit);  // over the limit only until `chunk` goes
    if (small == nullptr) return chunk;
    std::copy_n(chunk->records, chunk->used, small->records);
    small->used = chunk->used;
    unmap(chunk);
    return small;
}

Chunk* ChunkPool::take_free(std::size_t capacity) {
    auto& list = free_[size_class(capacity)];
    if (list.empty()) return nullptr;
    Chunk* chunk = list.back();
    list.pop_back();
    chunk->used = 0;
    return chunk;
}

Chunk* ChunkPool::map_new(std::size_t capacity) {
    const std::size_t populated =
        capacity == kLargeRecords ? capacity : std::min(capacity, kPopulateStep);
    Record* records = map_records(capacity * sizeof(Record), populated * sizeof(Record));
    if (records == nullptr) return nullptr;
    all_.push_back(std::make_unique<Chunk>(Chunk{records, capacity, 0, capacity - populated}));
    mapped_ += capacity * sizeof(Record);
    peak_ = std::max(peak_, mapped_);
    return all_.back().get();
}

Chunk* ChunkPool::take(std::size_t capacity) {
    std::unique_lock lock(mutex_);
    while (true) {
        if (Chunk* chunk = take_free(capacity)) return chunk;
        const std::uint64_t bytes = capacity * sizeof(Record);
        // The system refused the memory (a limit on the address space): as at the limit,
        // make room or wait for a chunk the writer gives back; nothing is lost while one is
        // out. That wait is not --max-memory's.
        bool refused = false;
        if (mapped_ + bytes <= limit_) {
            if (Chunk* chunk = map_new(capacity)) return chunk;
            refused = true;
        }
        // Free chunks of other sizes make room: give one back and look again.
        auto other = std::find_if(std::begin(free_), std::end(free_),
                                  [](const auto& list) { return !list.empty(); });
        if (other != std::end(free_)) {
            Chunk* spare = other->back();
            other->pop_back();
            unmap(spare);
            continue;
        }
        if (!refused) limit_reached_ = true;
        if (in_flight_ == 0) return map_new(capacity);  // nothing would ever come back
        returned_.wait(lock);
    }
}

Chunk* ChunkPool::try_take(std::size_t capacity, bool* refused) {
    const std::lock_guard lock(mutex_);
    if (Chunk* chunk = take_free(capacity)) return chunk;
    if (mapped_ + capacity * sizeof(Record) <= limit_) {
        Chunk* chunk = map_new(capacity);
        if (chunk == nullptr && refused != nullptr) *refused = true;
        return chunk;
    }
    limit_reached_ = true;
    return nullptr;
}

void ChunkPool::handed_over() {
    const std::lock_guard lock(mutex_);
    ++in_flight_;
}

void ChunkPool::give_back(Chunk* chunk) {
    {
        const std::lock_guard lock(mutex_);
        if (in_flight_ > 0) --in_flight_;
        free_[size_class(chunk->capacity)].push_back(chunk);
    }
    returned_.notify_all();
}

std::uint64_t ChunkPool::mapped_bytes() const {
    const std::lock_guard lock(mutex_);
    return mapped_;
}

std::uint64_t ChunkPool::peak_bytes() const {
    const std::lock_guard lock(mutex_);
    return peak_;
}

bool ChunkPool::limit_reached() const {
    const std::lock_guard lock(mutex_);
    return limit_reached_;
}

}  // namespace vztrace::tracer
