// ThreadBuffer::take_back_last: the last record comes back only while it is the last one
// appended and its chunk has not been handed over (call_details.hpp relies on both). A
// chunk's pages populated a step at a time as a thread fills it.
#include "tracer/thread_buffer.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <deque>
#include <vector>

using namespace vztrace::tracer;

namespace {

// Chunks of 4 records, kept to be read back.
class SmallChunks final : public ChunkSink {
 public:
    Chunk* chunk_full(ThreadBuffer&, Chunk* full) override {
        if (full != nullptr) handed.push_back(*full);
        storage.emplace_back(4);
        chunks.push_back(Chunk{storage.back().data(), 4, 0});
        return &chunks.back();
    }
    std::vector<std::vector<Record>> storage;
    std::deque<Chunk> chunks;
    std::vector<Chunk> handed;
};

constexpr auto kExitByException = EventKind::kExitByException;

}  // namespace

TEST_CASE("take_back_last takes back the last record only") {
    SmallChunks sink;
    ThreadBuffer buffer(sink, 1, 1, 1);
    buffer.append(10, 7, EventKind::kEnter);
    buffer.append(20, 7, kExitByException);
    CHECK_FALSE(buffer.take_back_last(Record{10, 7, EventKind::kEnter}));  // not the last
    CHECK_FALSE(buffer.take_back_last(Record{21, 7, kExitByException}));   // another time
    CHECK(buffer.take_back_last(Record{20, 7, kExitByException}));
    CHECK_FALSE(buffer.take_back_last(Record{20, 7, kExitByException}));  // once only
    buffer.append(30, 7, kExitByException);
    Chunk* chunk = buffer.take_current();
    REQUIRE(chunk != nullptr);
    REQUIRE(chunk->used == 2);
    CHECK(chunk->records[1].ticks == 30);
}

TEST_CASE("take_back_last works on the last record of a full chunk, not after it moves on") {
    SmallChunks sink;
    ThreadBuffer buffer(sink, 1, 1, 1);
    for (std::uint64_t t = 1; t <= 4; ++t) buffer.append(t, 1, EventKind::kEnter);
    // The chunk is full, and still the buffer's until the next append.
    CHECK(buffer.take_back_last(Record{4, 1, EventKind::kEnter}));
    buffer.append(4, 1, EventKind::kEnter);
    buffer.append(5, 1, EventKind::kExit);  // hands the full chunk over
    REQUIRE(sink.handed.size() == 1);
    CHECK(sink.handed[0].used == 4);
    CHECK_FALSE(buffer.take_back_last(Record{4, 1, EventKind::kEnter}));
    CHECK(buffer.take_back_last(Record{5, 1, EventKind::kExit}));
    // The new chunk is empty again: nothing of the old one comes back.
    CHECK_FALSE(buffer.take_back_last(Record{4, 1, EventKind::kEnter}));
}

namespace {

// Chunks from a pool, as the writer gives them: 16384 records each.
class PoolChunks final : public ChunkSink {
 public:
    Chunk* chunk_full(ThreadBuffer&, Chunk* full) override {
        if (full != nullptr) handed.push_back(*full);
        return pool.take(4 * ChunkPool::kSmallRecords);
    }
    ChunkPool pool{std::uint64_t{64} << 20};
    std::vector<Chunk> handed;
};

// How many of the pages of [records, records + count) are resident.
std::size_t resident_pages(const Record* records, std::size_t count) {
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t pages = (count * sizeof(Record) + page - 1) / page;
    std::vector<unsigned char> in_core(pages);
    REQUIRE(::mincore(const_cast<Record*>(records), count * sizeof(Record), in_core.data()) == 0);
    return static_cast<std::size_t>(std::count_if(in_core.begin(), in_core.end(),
                                                  [](unsigned char c) { return (c & 1) != 0; }));
}

}  // namespace

TEST_CASE("a chunk's pages are populated a step at a time as it fills, and all of it is used") {
    PoolChunks sink;
    ThreadBuffer buffer(sink, 1, 1, 1);
    constexpr std::size_t kStep = ChunkPool::kPopulateStep;
    constexpr std::size_t kCapacity = 4 * ChunkPool::kSmallRecords;
    buffer.append(1, 1, EventKind::kEnter);
    Chunk* chunk = buffer.take_current();
    REQUIRE(chunk != nullptr);
    // A short run touches the pages of its first step, not the chunk's 256 KiB.
    CHECK(chunk->unpopulated == kCapacity - kStep);
    CHECK(resident_pages(chunk->records, kStep) == kStep * sizeof(Record) / 4096);
    CHECK(resident_pages(chunk->records + kStep, kCapacity - kStep) == 0);
    sink.pool.give_back(chunk);

    ThreadBuffer filling(sink, 2, 2, 2);
    for (std::uint64_t t = 1; t <= kStep + 1; ++t) filling.append(t, 1, EventKind::kEnter);
    CHECK(sink.handed.empty());  // the step past the first is the same chunk's
    for (std::uint64_t t = kStep + 2; t <= kCapacity; ++t) filling.append(t, 1, EventKind::kEnter);
    CHECK(sink.handed.empty());
    filling.append(kCapacity + 1, 1, EventKind::kEnter);  // the chunk is full: handed over
    REQUIRE(sink.handed.size() == 1);
    const Chunk& full = sink.handed[0];
    CHECK(full.used == kCapacity);
    CHECK(full.unpopulated == 0);
    bool in_order = true;
    for (std::size_t i = 0; i < full.used; ++i) in_order &= full.records[i].ticks == i + 1;
    CHECK(in_order);
    CHECK(resident_pages(full.records, kCapacity) == kCapacity * sizeof(Record) / 4096);
}

TEST_CASE("a chunk of a huge page's size is populated whole") {
    ChunkPool pool(std::uint64_t{64} << 20);
    Chunk* chunk = pool.take(ChunkPool::kLargeRecords);
    REQUIRE(chunk != nullptr);
    CHECK(chunk->unpopulated == 0);
}
