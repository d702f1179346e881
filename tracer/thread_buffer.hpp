// ThreadBuffer: the event records of one thread, in chunks that are never moved or
// wrapped. Appending is one compare and one 16-byte store; a full chunk takes the
// out-of-line slow path, which asks the shared MemoryBudget for the next chunk.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tracer/compiler.hpp"

namespace vztrace::tracer {

using SymbolId = std::uint32_t;

enum class EventKind : std::uint32_t {
    kEnter = 0,
    kExit = 1,
    kExitByException = 2,  // PY_UNWIND / C_RAISE / a 3.11 return with an exception set
};

struct Record {
    std::uint64_t ticks;
    SymbolId symbol;
    EventKind kind;
};
static_assert(sizeof(Record) == 16);

// Bytes of records all threads may hold. Once a chunk is refused, recording stops for
// good (no ring wrap: what is kept is exact, and the count of what is not is known).
class MemoryBudget {
 public:
    explicit MemoryBudget(std::uint64_t limit_bytes) : limit_(limit_bytes) {}
    bool take(std::uint64_t bytes);
    bool exhausted() const { return exhausted_.load(std::memory_order_relaxed); }
    std::uint64_t used() const { return used_.load(std::memory_order_relaxed); }
    std::uint64_t limit() const { return limit_; }

 private:
    std::uint64_t limit_;
    std::atomic<std::uint64_t> used_{0};
    std::atomic<bool> exhausted_{false};
};

class ThreadBuffer {
 public:
    ThreadBuffer(MemoryBudget& budget, std::uint64_t tid) : budget_(budget), tid_(tid) {}
    ThreadBuffer(const ThreadBuffer&) = delete;
    ThreadBuffer& operator=(const ThreadBuffer&) = delete;

    VZ_ALWAYS_INLINE void append(std::uint64_t ticks, SymbolId symbol, EventKind kind) {
        if (VZ_LIKELY(next_ != end_)) {
            *next_++ = Record{ticks, symbol, kind};
            return;
        }
        append_slow(Record{ticks, symbol, kind});
    }

    std::vector<std::span<const Record>> chunks() const;
    std::uint64_t size() const;
    std::uint64_t dropped() const { return dropped_; }
    std::uint64_t tid() const { return tid_; }

    // The thread's name as the program knows it (threading.Thread.name); set while the GIL
    // is held, read by the writer after the program has ended.
    void set_name(std::string name) { name_ = std::move(name); }
    const std::string& name() const { return name_; }

 private:
    [[gnu::noinline]] void append_slow(Record record);

    // Record memory comes straight from mmap, populated up front (and as transparent
    // huge pages for full-size chunks): faulting fresh pages one by one cost about 6 ns
    // per call on fib (perf, 3.12).
    struct ChunkMemory {
        void operator()(Record* records) const;
        std::size_t bytes;
    };
    struct Chunk {
        std::unique_ptr<Record[], ChunkMemory> records;
        std::size_t capacity;
    };

    Record* next_ = nullptr;
    Record* end_ = nullptr;
    std::vector<Chunk> chunks_;
    std::uint64_t dropped_ = 0;
    MemoryBudget& budget_;
    std::uint64_t tid_;
    std::string name_;
};

}  // namespace vztrace::tracer
