#include <zlib.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "support/process.hpp"
#include "support/trace.hpp"
#include "tracer/capture.hpp"
#include "tracer/chrome_json_writer.hpp"
#include "tracer/output_file.hpp"
#include "tracer/thread_buffer.hpp"

using namespace vztrace::tracer;
using vztrace::testing::load_trace;
using vztrace::testing::read_file;
using vztrace::testing::TempDir;

namespace {

// Ticks are nanoseconds under the monotonic source: easy expectations.
Capture capture_of(const std::vector<Record>& records, std::uint64_t end_ticks,
                   std::vector<std::string> symbols) {
    static std::vector<std::vector<Record>> keep;  // spans must outlive the capture
    keep.push_back(records);
    Capture capture;
    ProcessCapture process;
    process.pid = 42;
    process.name = "app.py";
    process.symbols = std::move(symbols);
    process.mapping = TickMapping({}, {}, ClockSource::kMonotonic);
    process.end_ticks = end_ticks;
    ThreadCapture thread;
    thread.tid = 42;
    thread.name = "MainThread";
    thread.chunks.emplace_back(keep.back());
    process.threads.push_back(thread);
    capture.processes.push_back(process);
    return capture;
}

std::vector<Slice> slices_of(const Capture& capture) {
    std::vector<Slice> slices;
    for_each_slice(capture.processes[0].threads[0], capture.processes[0].end_ticks,
                   [&](const Slice& s) { slices.push_back(s); });
    return slices;
}

constexpr auto kEnter = EventKind::kEnter;
constexpr auto kExit = EventKind::kExit;

}  // namespace

TEST_CASE("enter and exit records pair into nested slices, innermost first") {
    const auto capture =
        capture_of({{1000, 0, kEnter}, {2000, 1, kEnter}, {3000, 1, kExit}, {5000, 0, kExit}}, 9000,
                   {"outer", "inner"});
    const auto slices = slices_of(capture);
    REQUIRE(slices.size() == 2);
    CHECK(slices[0].symbol == 1);
    CHECK(slices[0].begin_ticks == 2000);
    CHECK(slices[0].end_ticks == 3000);
    CHECK(slices[1].symbol == 0);
    CHECK_FALSE(slices[1].unfinished);
}

TEST_CASE("calls still open at the end are closed at the end time and flagged") {
    const auto capture = capture_of({{1000, 0, kEnter}, {2000, 1, kEnter}}, 9000, {"a", "b"});
    const auto slices = slices_of(capture);
    REQUIRE(slices.size() == 2);
    CHECK(slices[0].end_ticks == 9000);
    CHECK(slices[0].unfinished);
    CHECK(slices[1].unfinished);
}

TEST_CASE(
    "an exit without its enter is skipped and an exit of a deeper enter closes the calls above") {
    const auto capture = capture_of({{100, 2, kExit},
                                     {1000, 0, kEnter},
                                     {2000, 1, kEnter},
                                     {4000, 0, EventKind::kExitByException}},
                                    9000, {"a", "b", "c"});
    const auto slices = slices_of(capture);
    REQUIRE(slices.size() == 2);
    CHECK(slices[0].symbol == 1);
    CHECK(slices[0].end_ticks == 4000);
    CHECK(slices[0].unfinished);
    CHECK(slices[1].symbol == 0);
    CHECK_FALSE(slices[1].unfinished);
}

TEST_CASE("the Chrome JSON writer produces a valid trace with names, times and metadata") {
    TempDir dir;
    auto capture = capture_of({{1'000'000, 0, kEnter},
                               {1'000'250, 1, kEnter},
                               {1'001'500, 1, kExit},
                               {1'002'000, 0, kExit},
                               {1'003'000, 2, kEnter}},
                              1'004'000, {"main (/a \"quoted\".py:1)", "builtins.len", "open"});
    capture.processes[0].info.vztrace_version = "9.9";
    OutputFile file(dir.file("t.json"));
    WriteStats stats;
    REQUIRE(ChromeJsonWriter().write(capture, file, stats));
    CHECK(stats.slices == 3);
    CHECK(stats.unfinished == 1);
    const auto trace = load_trace(dir.file("t.json"));
    REQUIRE(trace.slices.size() == 3);
    CHECK(trace.count("main (/a \"quoted\".py:1)") == 1);
    const auto len = trace.named("builtins.len").at(0);
    CHECK(len.ts_ns == 1'000'250);
    CHECK(len.dur_ns == 1'250);
    CHECK(trace.named("open").at(0).unfinished);
    CHECK(trace.threads.at(42) == "MainThread");
    CHECK(trace.processes.at(42) == "app.py");
    CHECK(trace.metadata.at("version") == "9.9");
    CHECK(trace.metadata.at("events") == "5");
    CHECK(trace.metadata.at("unfinished_calls") == "1");
    CHECK(trace.nesting_problem().empty());
}

TEST_CASE("a large trace is flushed in pieces and stays valid JSON") {
    TempDir dir;
    std::vector<Record> records;
    for (std::uint64_t i = 0; i < 200'000; ++i) {
        records.push_back({i * 10, 0, kEnter});
        records.push_back({i * 10 + 5, 0, kExit});
    }
    const auto capture = capture_of(records, 3'000'000, {"f"});
    OutputFile file(dir.file("big.json"));
    WriteStats stats;
    REQUIRE(ChromeJsonWriter().write(capture, file, stats));
    CHECK(load_trace(dir.file("big.json")).count("f") == 200'000);
}

TEST_CASE("a trace of many buffers keeps every event, in order") {
    TempDir dir;
    std::vector<Record> records;
    constexpr std::uint64_t kCalls = 600'000;  // about 50 MB: several buffer exchanges
    for (std::uint64_t i = 0; i < kCalls; ++i) {
        records.push_back({i * 10, static_cast<SymbolId>(i % 3), kEnter});
        records.push_back({i * 10 + 5, static_cast<SymbolId>(i % 3), kExit});
    }
    const auto capture = capture_of(records, kCalls * 10, {"a", "bb", "ccc"});
    OutputFile file(dir.file("big.json"));
    WriteStats stats;
    REQUIRE(ChromeJsonWriter().write(capture, file, stats));
    CHECK(stats.slices == kCalls);
    const auto trace = load_trace(dir.file("big.json"));
    REQUIRE(trace.slices.size() == kCalls);
    std::uint64_t out_of_place = 0;
    for (std::uint64_t i = 0; i < kCalls; ++i) {
        const auto& slice = trace.slices[i];
        const std::string expected = i % 3 == 0 ? "a" : i % 3 == 1 ? "bb" : "ccc";
        if (slice.ts_ns != static_cast<std::int64_t>(i * 10) || slice.dur_ns != 5 ||
            slice.name != expected) {
            ++out_of_place;
        }
    }
    CHECK(out_of_place == 0);
    CHECK(trace.metadata.at("slices") == std::to_string(kCalls));
}

TEST_CASE("the background writer writes exchanged buffers whole and in order") {
    TempDir dir;
    OutputFile file(dir.file("seq.txt"));
    std::string expected;
    {
        BackgroundWriter writer(file);
        std::string buffer;
        for (int i = 0; i < 50; ++i) {
            const std::string piece = std::string(1000 + i * 37, static_cast<char>('a' + i % 26));
            if (buffer.size() < 4096) buffer.resize(4096);
            std::copy(piece.begin(), piece.end(), buffer.begin());
            buffer = writer.exchange(std::move(buffer), piece.size());
            expected += piece;
        }
        REQUIRE(writer.finish());
    }
    REQUIRE(file.commit());
    CHECK(read_file(dir.file("seq.txt")) == expected);
}

TEST_CASE("a write failure in the middle of a large trace is reported") {
    std::vector<Record> records;
    for (std::uint64_t i = 0; i < 300'000; ++i) {
        records.push_back({i * 10, 0, kEnter});
        records.push_back({i * 10 + 5, 0, kExit});
    }
    const auto capture = capture_of(records, 3'000'000, {"f"});
    OutputFile full("/dev/full");
    WriteStats stats;
    CHECK_FALSE(ChromeJsonWriter().write(capture, full, stats));
    CHECK(full.error() == "cannot write '/dev/full': No space left on device");
}

TEST_CASE("an existing file is replaced only by a complete trace") {
    TempDir dir;
    dir.write("t.json", "precious");
    {
        OutputFile file(dir.file("t.json"));
        REQUIRE(file.write("half a tra"));
        // destroyed without commit: a failed run
    }
    CHECK(read_file(dir.file("t.json")) == "precious");
    CHECK(std::distance(std::filesystem::directory_iterator(dir.path()),
                        std::filesystem::directory_iterator()) == 1);
    OutputFile file(dir.file("t.json"));
    REQUIRE(file.write("{}"));
    REQUIRE(file.commit());
    CHECK(read_file(dir.file("t.json")) == "{}");
}

TEST_CASE("write failures say which file and why") {
    TempDir dir;
    OutputFile missing(dir.file("no/such/dir/t.json"));
    CHECK_FALSE(missing.ok());
    CHECK(missing.error().find("No such file or directory") != std::string::npos);
    OutputFile full("/dev/full");
    REQUIRE(full.ok());
    CHECK_FALSE(full.write(std::string(1 << 16, 'x')));
    CHECK(full.error() == "cannot write '/dev/full': No space left on device");
}

TEST_CASE("a .gz output is gzip that decompresses to the same trace") {
    TempDir dir;
    const auto capture = capture_of({{10, 0, kEnter}, {20, 0, kExit}}, 30, {"f"});
    OutputFile file(dir.file("t.json.gz"));
    WriteStats stats;
    REQUIRE(ChromeJsonWriter().write(capture, file, stats));
    gzFile gz = gzopen(dir.file("t.json.gz").c_str(), "rb");
    REQUIRE(gz != nullptr);
    std::string text;
    char buffer[4096];
    int n = 0;
    while ((n = gzread(gz, buffer, sizeof buffer)) > 0) text.append(buffer, n);
    gzclose(gz);
    dir.write("plain.json", text);
    CHECK(load_trace(dir.file("plain.json")).count("f") == 1);
}

TEST_CASE("past the memory budget records are dropped and counted, never wrapped") {
    MemoryBudget budget(4096 * sizeof(Record));  // exactly one first chunk
    ThreadBuffer buffer(budget, 1);
    for (std::uint64_t i = 0; i < 5000; ++i) buffer.append(i, 0, kEnter);
    CHECK(buffer.size() == 4096);
    CHECK(buffer.dropped() == 5000 - 4096);
    CHECK(budget.exhausted());
    CHECK(buffer.chunks().at(0)[4095].ticks == 4095);
}

TEST_CASE("tick mapping is linear between anchors") {
    const TickMapping mapping({1000, 5'000'000}, {3000, 5'001'000}, ClockSource::kTsc);
    CHECK(mapping.to_ns(1000) == 5'000'000);
    CHECK(mapping.to_ns(2000) == 5'000'500);
    CHECK(mapping.ns_per_tick() == Approx(0.5));
}
