// TraceWriter::wind_down: a root's writer thread encodes the last records while python
// finalizes, then ends; what is handed over after it has ended is written on the spot, in
// order, and finish() writes the rest.
#include "tracer/trace_writer.hpp"

#include <sched.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <vector>

#include "support/process.hpp"
#include "tracer/chunk_pool.hpp"
#include "tracer/clock.hpp"
#include "tracer/format/call_reader.hpp"
#include "tracer/output_file.hpp"
#include "tracer/symbol_table.hpp"
#include "tracer/thread_buffer.hpp"

using namespace vztrace::tracer;
using vztrace::format::CallReadResult;
using vztrace::format::CallVisitor;
using vztrace::testing::TempDir;

namespace {

// The calls of each thread, and whether every end had its begin.
struct Calls final : CallVisitor {
    std::map<std::uint64_t, std::int64_t> tid_of;  // told before or after the calls
    std::map<std::uint64_t, std::size_t> calls;
    std::map<std::uint64_t, int> open;
    bool well_formed = true;
    std::int64_t last_ns = 0;
    bool in_order = true;
    void thread(std::uint64_t thread, std::int64_t, std::int64_t tid, std::string_view,
                std::string_view) override {
        tid_of[thread] = tid;
    }
    void begin(std::uint64_t thread, std::string_view, std::int64_t ns) override {
        ++open[thread];
        in_order &= ns >= last_ns;
        last_ns = ns;
    }
    std::size_t calls_of(std::int64_t tid) const {
        for (const auto& [thread, its_tid] : tid_of) {
            if (its_tid == tid) return calls.contains(thread) ? calls.at(thread) : 0;
        }
        return 0;
    }
    void end(std::uint64_t thread, std::int64_t ns) override {
        if (open[thread]-- == 0) well_formed = false;
        ++calls[thread];
        in_order &= ns >= last_ns;
        last_ns = ns;
    }
};

// `count` calls of `symbol` into `buffer`, one tick apart, from `ticks` on.
void record_calls(ThreadBuffer& buffer, SymbolId symbol, std::size_t count, std::uint64_t& ticks) {
    for (std::size_t i = 0; i < count; ++i) {
        buffer.append(ticks++, symbol, EventKind::kEnter);
        buffer.append(ticks++, symbol, EventKind::kExit);
    }
}

}  // namespace

TEST_CASE("after the writer winds down, what is handed over is written on the spot, in order") {
    TempDir dir;
    TickClock::force(ClockSource::kMonotonic);
    SymbolTable symbols;
    const SymbolId f = symbols.add("f");
    // Room for two first chunks: chunks handed over once the writer thread has ended must
    // come back to the pool at once, or the next one is waited for forever.
    ChunkPool pool(2 * ChunkPool::kSmallRecords * sizeof(Record));
    OutputFile file(dir.file("t.pftrace"));
    REQUIRE(file.ok());
    TraceWriter writer(pool, symbols, file, TickClock::anchor(), ::getpid(), 1, StreamOptions{});
    writer.write_process_start("test");
    writer.allow_thread();
    std::uint64_t ticks = TickClock::now();
    ThreadBuffer main_thread(writer, 11, 2, 100);
    // More than a first chunk's records: the writer thread starts with the first full one.
    record_calls(main_thread, f, ChunkPool::kSmallRecords, ticks);
    REQUIRE(writer.thread_running());
    writer.wind_down(&main_thread);
    while (!writer.wound_down()) sched_yield();  // it ends once its queue is empty
    // Another thread's calls, through many chunks of a pool with room for two.
    ThreadBuffer other(writer, 12, 3, 101);
    record_calls(other, f, 5 * ChunkPool::kSmallRecords, ticks);
    const std::vector<ThreadBuffer*> buffers = {&main_thread, &other};
    REQUIRE(writer.finish(buffers, ticks, "test"));
    REQUIRE(file.commit());

    Calls read;
    REQUIRE(vztrace::format::read_calls(dir.file("t.pftrace"), read).status ==
            CallReadResult::Status::kOk);
    CHECK(read.well_formed);
    CHECK(read.in_order);
    CHECK(read.calls_of(11) == ChunkPool::kSmallRecords);
    CHECK(read.calls_of(12) == 5 * ChunkPool::kSmallRecords);
}
