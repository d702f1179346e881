// ThreadBuffer::take_back_last: the last record comes back only while it is the last one
// appended and its chunk has not been handed over (call_details.hpp relies on both).
#include "tracer/thread_buffer.hpp"

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
