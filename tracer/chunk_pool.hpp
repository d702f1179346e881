// ChunkPool: the memory every thread records into, in chunks that the writer hands back
// once encoded. A chunk's pages are populated once, before a thread records into them
// (full-size chunks whole, as transparent huge pages; smaller ones 64 KiB at a time), and
// then reused: faulting fresh pages one by one cost about 6 ns per call on fib, and
// zeroing new ones was 19% of a long run's time (perf, 3.12).
// The pool holds at most `limit` bytes of records; past it a thread waits for the writer
// to hand one back, so a slow disk slows the program instead of losing events.
#pragma once

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "tracer/format/record.hpp"

namespace vztrace::tracer {

using format::Record;

struct Chunk {
    Record* records = nullptr;
    std::size_t capacity = 0;  // in records
    std::size_t used = 0;      // records written, once the chunk is handed over
    // The records at the end whose pages are not populated yet: a new chunk's pages are
    // populated a step at a time, as a thread fills it (ThreadBuffer), so that a short run
    // populates what it records into and no more.
    std::size_t unpopulated = 0;
    // Where the populated records end.
    Record* populated_end() const { return records + (capacity - unpopulated); }
};

// Populates the pages of the next kPopulateStep records of `chunk`'s unpopulated ones
// (the thread that fills it, before it writes there).
void populate_step(Chunk& chunk);

class ChunkPool {
 public:
    // A thread's first chunk is small (many programs have many short threads, and a short
    // run should not clear a huge page); each next one is four times larger, up to one
    // 2 MiB huge page: the slow path then runs once per 131072 events.
    static constexpr std::size_t kSmallRecords = 4096;
    static constexpr std::size_t kLargeRecords = (std::size_t{2} << 20) / sizeof(Record);
    // A new chunk below the huge page's size has this many records populated at first
    // (populate_step does the rest); one of that size is populated whole, one huge page.
    static constexpr std::size_t kPopulateStep = kSmallRecords;
    static constexpr std::size_t next_capacity(std::size_t previous) {
        return previous == 0 ? kSmallRecords : std::min(previous * 4, kLargeRecords);
    }

    explicit ChunkPool(std::uint64_t limit_bytes) : limit_(limit_bytes) {}
    ~ChunkPool();
    ChunkPool(const ChunkPool&) = delete;
    ChunkPool& operator=(const ChunkPool&) = delete;

    // A chunk of `capacity` records (kSmallRecords or kLargeRecords): a recycled one, or
    // new memory within the limit. At the limit it waits while chunks are in flight
    // (handed to the writer, not yet back); when none is, the limit gives way rather than
    // block for good (more threads than the limit has chunks for). Null only when memory
    // cannot be mapped.
    Chunk* take(std::size_t capacity);
    // The same, but null at the limit instead of waiting, and null, with `*refused` set,
    // when the system refuses the memory below it.
    Chunk* try_take(std::size_t capacity, bool* refused = nullptr);
    // Ring mode: `chunk`'s records (a thread's last chunk, that it ended with little of it
    // used) moved into the smallest chunk that holds them, and `chunk`'s memory unmapped,
    // so that the ring's memory holds records, not room: 200 short threads each held 4096
    // records of a ring for the 300 they used (hunt AR). `chunk` itself when no smaller
    // one holds them or the system refuses the memory.
    Chunk* shrink(Chunk* chunk);
    // A chunk is with the writer (counts as in flight until given back).
    void handed_over();
    void give_back(Chunk* chunk);

    std::uint64_t limit() const { return limit_; }
    std::uint64_t mapped_bytes() const;
    std::uint64_t peak_bytes() const;
    // A thread had to wait at the limit, or the limit gave way (not when the system
    // refused memory below it).
    bool limit_reached() const;

 private:
    Chunk* take_free(std::size_t capacity);
    Chunk* map_new(std::size_t capacity);

    const std::uint64_t limit_;
    mutable std::mutex mutex_;
    std::condition_variable returned_;
    std::vector<std::unique_ptr<Chunk>> all_;
    // Free chunks by size: the small ones for shrink(), then those threads take.
    static constexpr std::array<std::size_t, 12> kClassRecords = {
        256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 16384, 65536, 131072};
    static_assert(kClassRecords[8] == kSmallRecords && kClassRecords[11] == kLargeRecords);
    static constexpr std::size_t kSizes = kClassRecords.size();
    static std::size_t size_class(std::size_t capacity);
    void unmap(Chunk* chunk);  // under mutex_
    std::vector<Chunk*> free_[kSizes];
    std::uint64_t mapped_ = 0;
    std::uint64_t peak_ = 0;
    std::size_t in_flight_ = 0;
    bool limit_reached_ = false;
};

}  // namespace vztrace::tracer
