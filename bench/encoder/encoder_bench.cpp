// The writer's encoding rate on one core, apart from any program: synthetic records of a
// fib-like recursion with C calls between, handed to a TraceWriter chunk by chunk on this
// thread (its own thread stopped), encoded and written to /dev/null. Prints one JSON line
// per format: calls per second and bytes per call. bench/runner.py runs it.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "tracer/chunk_pool.hpp"
#include "tracer/clock.hpp"
#include "tracer/output_file.hpp"
#include "tracer/symbol_table.hpp"
#include "tracer/thread_buffer.hpp"
#include "tracer/trace_writer.hpp"

using namespace vztrace::tracer;

namespace {

struct Result {
    double calls_per_s;
    double bytes_per_call;
};

// fib(n): enters and exits of a recursion, with a C call (a builtin) in every frame, 40 to
// 440 ns apart (what a traced program's events are).
void fib(std::vector<Record>& records, int n, std::uint64_t& ticks, std::mt19937& random) {
    const auto step = [&] { return ticks += 40 + random() % 400; };
    records.push_back({step(), 1, EventKind::kEnter});
    records.push_back({step(), 2, EventKind::kEnter});  // builtins.len
    records.push_back({step(), 2, EventKind::kExit});
    if (n >= 2) {
        fib(records, n - 1, ticks, random);
        fib(records, n - 2, ticks, random);
    }
    records.push_back({step(), 1, EventKind::kExit});
}

Result run(bool compress, const std::vector<Record>& records) {
    TickClock::force(ClockSource::kMonotonic);
    ChunkPool pool(std::uint64_t{64} << 20);
    SymbolTable symbols;
    symbols.add("python start-up (site, .pth files, sitecustomize)");
    symbols.add_python("fib", "/home/user/project/bench/workloads/fib.py", 4);
    symbols.add("builtins.len");
    OutputFile file("/dev/null");
    StreamOptions options;
    options.compress = compress;
    const ClockAnchor start = TickClock::anchor();
    TraceWriter writer(pool, symbols, file, start, 1, 1, options);  // no thread: this one
    ThreadBuffer buffer(writer, 1, 2, 2);
    // The records are made beforehand: what is timed is the hand-over (a 16-byte store
    // each, as in a hook) and the writer's encoding and writing.
    const auto began = std::chrono::steady_clock::now();
    for (const Record& record : records) buffer.append(record.ticks, record.symbol, record.kind);
    ThreadBuffer* buffers[] = {&buffer};
    writer.finish(buffers, records.back().ticks, "bench");
    const std::uint64_t calls = records.size() / 2;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    return {static_cast<double>(calls) / seconds,
            static_cast<double>(file.bytes_written()) / static_cast<double>(calls)};
}

}  // namespace

int main(int argc, char** argv) {
    const int depth = argc > 1 ? std::atoi(argv[1]) : 27;
    std::vector<Record> records;
    std::mt19937 random(42);
    std::uint64_t ticks = static_cast<std::uint64_t>(TickClock::monotonic_ns());
    fib(records, depth, ticks, random);
    for (const bool compress : {false, true}) {
        Result best{0, 0};
        for (int round = 0; round < 3; ++round) {
            const Result result = run(compress, records);
            if (result.calls_per_s > best.calls_per_s) best = result;
        }
        std::printf("%s\n",
                    fmt::format(R"({{"format":"{}","calls_per_s":{:.0f},"bytes_per_call":{:.2f}}})",
                                compress ? "perfetto --compress" : "perfetto", best.calls_per_s,
                                best.bytes_per_call)
                        .c_str());
    }
    return 0;
}
