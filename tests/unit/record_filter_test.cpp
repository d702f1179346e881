// The recording controls' filter (tracer/record_filter.hpp) on records alone, and the
// records beyond calls (arguments, instants, counters, slices on named tracks) through
// the Perfetto encoder and reader. Ticks are nanoseconds here.
#include "tracer/record_filter.hpp"

#include <catch2/catch.hpp>
#include <cstring>

#include "tracer/format/perfetto_encoder.hpp"
#include "tracer/format/perfetto_reader.hpp"

using namespace vztrace::tracer;
using vztrace::format::EventKind;

namespace {

constexpr auto kEnter = EventKind::kEnter;
constexpr auto kExit = EventKind::kExit;

std::vector<Record> run_filter(const FilterRules& rules, const std::vector<Record>& in,
                               std::int64_t end_ns = 1'000'000) {
    RecordFilter filter(rules);
    std::vector<Record> out;
    // Fed in two pieces, as two chunks (never inside an event's raw records): what the
    // filter holds carries across chunks.
    std::size_t half = 0;
    while (half < in.size() / 2) half += 1 + vztrace::format::raw_records_after(in[half]);
    const auto to_ns = [](std::uint64_t t) { return static_cast<std::int64_t>(t); };
    filter.filter(std::span(in).first(half), to_ns, out);
    filter.filter(std::span(in).subspan(half), to_ns, out);
    filter.finish(end_ns, out);
    return out;
}

std::vector<std::pair<SymbolId, EventKind>> shape(const std::vector<Record>& records) {
    std::vector<std::pair<SymbolId, EventKind>> result;
    for (const Record& record : records) result.emplace_back(record.symbol, record.kind);
    return result;
}

// Arguments for the next event: a kArgs record and its raw records.
std::vector<Record> args_records(std::uint64_t ticks,
                                 const std::vector<vztrace::format::Arg>& args) {
    std::string bytes(4, '\0');
    bytes += vztrace::format::encode_args(args);
    const auto size = static_cast<std::uint32_t>(bytes.size() - 4);
    std::memcpy(bytes.data(), &size, 4);
    const std::size_t raw = vztrace::format::raw_records_for(bytes.size());
    std::vector<Record> records(1 + raw, Record{0, 0, kEnter});
    records[0] = Record{ticks, static_cast<SymbolId>(raw), EventKind::kArgs};
    std::memset(static_cast<void*>(&records[1]), 0, raw * sizeof(Record));
    std::memcpy(static_cast<void*>(&records[1]), bytes.data(), bytes.size());
    return records;
}

}  // namespace

TEST_CASE("max depth: deeper calls go with their exits; shallower ones stay nested") {
    FilterRules rules;
    rules.max_depth = 2;
    const auto out = run_filter(rules, {{1, 0, kEnter},
                                        {2, 1, kEnter},
                                        {3, 2, kEnter},
                                        {4, 3, kEnter},
                                        {5, 3, kExit},
                                        {6, 2, kExit},
                                        {7, 1, kExit},
                                        {8, 4, kEnter},
                                        {9, 4, kExit},
                                        {10, 0, kExit}});
    CHECK(shape(out) ==
          std::vector<std::pair<SymbolId, EventKind>>{
              {0, kEnter}, {1, kEnter}, {1, kExit}, {4, kEnter}, {4, kExit}, {0, kExit}});
}

TEST_CASE("a call left at its first instruction is filtered as its start would have been") {
    // An exception's exit with no start (a call CPython never said began: the encoder
    // writes it where it ended, taking no time) passed every control; below --max-stack-
    // depth, under an ignored call or shorter than --min-duration it is left out now.
    constexpr auto kRaised = EventKind::kExitByException;
    const std::vector<Record> in = {{1, 0, kEnter}, {2, 1, kEnter},  {3, 5, kRaised},
                                    {4, 1, kExit},  {5, 6, kRaised}, {6, 0, kExit}};
    FilterRules rules;
    rules.max_depth = 2;
    CHECK(shape(run_filter(rules, in)) ==
          std::vector<std::pair<SymbolId, EventKind>>{
              {0, kEnter}, {1, kEnter}, {1, kExit}, {6, kRaised}, {0, kExit}});
    rules.max_depth = 3;
    CHECK(shape(run_filter(rules, in)) == shape(in));
    FilterRules short_ones;
    short_ones.min_duration_ns = 1;
    CHECK(shape(run_filter(short_ones, {{0, 0, kEnter}, {5, 5, kRaised}, {10, 0, kExit}})) ==
          std::vector<std::pair<SymbolId, EventKind>>{{0, kEnter}, {0, kExit}});
}

TEST_CASE("the exits of calls the filter ended early are not passed on when they come") {
    // A greenlet's calls (1, 2) ended by the exit of the switch below them (3); their exits
    // come when the greenlet is killed later. The filter ended them already: passed on,
    // the encoder took them for calls CPython never said began, and counted them twice.
    constexpr auto kRaised = EventKind::kExitByException;
    FilterRules rules;
    rules.max_depth = 10;
    const auto out = run_filter(rules, {{1, 0, kEnter},
                                        {2, 3, kEnter},
                                        {3, 1, kEnter},
                                        {4, 2, kEnter},
                                        {5, 3, kExit},
                                        {6, 2, kRaised},
                                        {7, 1, kRaised},
                                        {8, 1, kRaised},
                                        {9, 0, kExit}});
    CHECK(shape(out) == std::vector<std::pair<SymbolId, EventKind>>{{0, kEnter},
                                                                    {3, kEnter},
                                                                    {1, kEnter},
                                                                    {2, kEnter},
                                                                    {2, kExit},
                                                                    {1, kExit},
                                                                    {3, kExit},
                                                                    {1, kRaised},
                                                                    {0, kExit}});
}

TEST_CASE("min duration: short calls go, long ones stay, and order is kept across chunks") {
    FilterRules rules;
    rules.min_duration_ns = 100;
    const auto out = run_filter(rules, {{0, 0, kEnter},   // 0: 0..500, kept
                                        {10, 1, kEnter},  // 1: 10..20, short
                                        {20, 1, kExit},
                                        {30, 2, kEnter},  // 2: 30..300, kept
                                        {40, 3, kEnter},  // 3: 40..50, short
                                        {50, 3, kExit},
                                        {300, 2, kExit},
                                        {310, 4, kEnter},  // 4: still open at the end
                                        {500, 0, kExit},
                                        {600, 5, kEnter}});  // 5: open, too short by the end
    // 4 was open when 0 ended: it ends with it, 190 ns long; 5 is long enough by the end.
    CHECK(shape(out) == std::vector<std::pair<SymbolId, EventKind>>{{0, kEnter},
                                                                    {2, kEnter},
                                                                    {2, kExit},
                                                                    {4, kEnter},
                                                                    {4, kExit},
                                                                    {0, kExit},
                                                                    {5, kEnter}});
    // The end decides the calls still open: 1 began at 10, and the end is at 650 or 50.
    const auto late = run_filter(rules, {{0, 0, kEnter}, {10, 1, kEnter}}, 650);
    CHECK(shape(late) == std::vector<std::pair<SymbolId, EventKind>>{{0, kEnter}, {1, kEnter}});
    const auto early = run_filter(rules, {{0, 0, kEnter}, {10, 1, kEnter}}, 50);
    CHECK(early.empty());
}

TEST_CASE("pause windows: calls begun while paused go, calls open across keep their end") {
    PauseWindows pauses;
    pauses.pause(100);
    pauses.resume(200);
    CHECK(pauses.contains(150));
    CHECK_FALSE(pauses.contains(200));
    CHECK_FALSE(pauses.paused());
    FilterRules rules;
    rules.pauses = &pauses;
    const auto out = run_filter(rules, {{50, 0, kEnter},
                                        {120, 1, kEnter},
                                        {130, 2, kEnter},
                                        {140, 2, kExit},
                                        {150, 5, EventKind::kInstant},
                                        {250, 1, kExit},
                                        {260, 3, kEnter},
                                        {270, 3, kExit},
                                        {300, 0, kExit}});
    CHECK(shape(out) == std::vector<std::pair<SymbolId, EventKind>>{
                            {0, kEnter}, {3, kEnter}, {3, kExit}, {0, kExit}});
}

TEST_CASE("a call begun while paused goes with what it calls after the resume") {
    // Before: a call made under it after the resume was kept, as a call of the function
    // that had called the one left out.
    PauseWindows pauses;
    pauses.pause(100);
    pauses.resume(200);
    FilterRules rules;
    rules.pauses = &pauses;
    const auto out = run_filter(rules, {{50, 0, kEnter},
                                        {150, 1, kEnter},
                                        {210, 2, kEnter},
                                        {220, 5, EventKind::kInstant},
                                        {230, 2, kExit},
                                        {250, 1, kExit},
                                        {260, 3, kEnter},
                                        {270, 3, kExit},
                                        {300, 0, kExit}});
    CHECK(shape(out) == std::vector<std::pair<SymbolId, EventKind>>{
                            {0, kEnter}, {3, kEnter}, {3, kExit}, {0, kExit}});
}

TEST_CASE("an ignored function goes with everything it calls; sparse keeps the marked only") {
    SymbolTable symbols;
    for (int i = 0; i < 4; ++i) symbols.add("f" + std::to_string(i));
    symbols.add_flags(1, kIgnoreSubtree);
    symbols.add_flags(3, kSparse);
    FilterRules rules;
    rules.symbols = &symbols;
    const std::vector<Record> in = {
        {1, 0, kEnter}, {2, 1, kEnter}, {3, 2, kEnter}, {4, 7, EventKind::kInstant},
        {5, 2, kExit},  {6, 1, kExit},  {7, 3, kEnter}, {8, 3, kExit},
        {9, 0, kExit}};
    CHECK(shape(run_filter(rules, in)) == std::vector<std::pair<SymbolId, EventKind>>{
                                              {0, kEnter}, {3, kEnter}, {3, kExit}, {0, kExit}});
    rules.sparse = true;
    CHECK(shape(run_filter(rules, in)) ==
          std::vector<std::pair<SymbolId, EventKind>>{{3, kEnter}, {3, kExit}});
}

TEST_CASE("a call's arguments go with it when it is left out, and stay with it otherwise") {
    FilterRules rules;
    rules.max_depth = 1;
    std::vector<Record> in = args_records(1, {{"x", "1"}});
    in.push_back({1, 0, kEnter});
    const auto inner_args = args_records(2, {{"y", "2"}});
    in.insert(in.end(), inner_args.begin(), inner_args.end());
    in.push_back({2, 1, kEnter});
    in.push_back({3, 1, kExit});
    in.push_back({4, 0, kExit});
    const auto out = run_filter(rules, in);
    REQUIRE(out.size() == 2 + args_records(1, {{"x", "1"}}).size());
    CHECK(out.front().kind == EventKind::kArgs);
    CHECK(out[out.size() - 2].kind == kEnter);
    CHECK(out.back().kind == kExit);
}

TEST_CASE("arguments, instants, counters and named tracks read back from Perfetto") {
    using namespace vztrace::format;
    const std::vector<std::string> names = {"f (/a.py:1)", "mark", "memory", "Task-1", "step"};
    const auto symbol = [&names](SymbolId id) { return SymbolInfo{names[id]}; };
    std::vector<Record> records = args_records(100, {{"n", "3"}, {"label", "'x'"}});
    records.push_back({100, 0, EventKind::kEnter});
    const auto instant_args = args_records(110, {{"why", "test"}});
    records.insert(records.end(), instant_args.begin(), instant_args.end());
    records.push_back({110, 1, EventKind::kInstant});
    Record counter{120, 2, EventKind::kCounter};
    Record value{0, 0, EventKind::kEnter};
    const double sample = 42.5;
    std::memcpy(static_cast<void*>(&value), &sample, sizeof sample);
    records.push_back(counter);
    records.push_back(value);
    Record track{130, 4, EventKind::kTrackEnter};
    Record track_name{0, 0, EventKind::kEnter};
    const SymbolId task = 3;
    std::memcpy(static_cast<void*>(&track_name), &task, sizeof task);
    records.push_back(track);
    records.push_back(track_name);
    records.push_back({140, 3, EventKind::kTrackExit});
    const auto retval = args_records(150, {{"return", "7"}});
    records.insert(records.end(), retval.begin(), retval.end());
    records.push_back({150, 0, EventKind::kExit});

    ByteBuffer out;
    append_process_descriptor(1, process_track_uuid(42), 42, "app", {}, out);
    PerfettoSequence sequence(7, thread_track_uuid(42, 7), process_track_uuid(42));
    sequence.begin(100, 0, out);
    append_thread_descriptor(7, sequence.track_uuid(), process_track_uuid(42), 42, 43, "Main", out);
    sequence.encode(
        records, [](std::uint64_t t) { return static_cast<std::int64_t>(t); }, symbol, out);

    PerfettoReader reader;
    std::vector<std::pair<std::string, DecodedArgs>> slices;
    std::vector<DecodedInstant> instants;
    std::vector<DecodedCounter> counters;
    reader.on_slice = [&](const DecodedSlice& slice) {
        slices.emplace_back(std::string(slice.name), slice.args ? *slice.args : DecodedArgs{});
    };
    reader.on_instant = [&](const DecodedInstant& instant) { instants.push_back(instant); };
    reader.on_counter = [&](const DecodedCounter& c) { counters.push_back(c); };
    REQUIRE(reader.feed(out.view()));
    REQUIRE(reader.finish());
    REQUIRE(slices.size() == 2);
    CHECK(slices[0].first == "step");  // on Task-1's track, ended first
    CHECK(slices[1].first == "f (/a.py:1)");
    CHECK(slices[1].second == DecodedArgs{{"n", "3"}, {"label", "'x'"}, {"return", "7"}});
    REQUIRE(instants.size() == 1);
    CHECK(instants[0].name == "mark");
    CHECK(instants[0].args == DecodedArgs{{"why", "test"}});
    REQUIRE(counters.size() == 1);
    CHECK(counters[0].value == 42.5);
    CHECK(reader.tracks().at(counters[0].track_uuid).name == "memory");
    CHECK(reader.tracks().at(counters[0].track_uuid).is_counter);
    CHECK(reader.tracks().at(counters[0].track_uuid).pid == 42);
    bool task_track = false;
    for (const auto& [uuid, info] : reader.tracks()) task_track |= info.name == "Task-1";
    CHECK(task_track);
}

TEST_CASE("arguments that end one chunk go with the first event of the next") {
    using namespace vztrace::format;
    const auto symbol = [](SymbolId) { return SymbolInfo{"f (/a.py:1)"}; };
    const auto to_ns = [](std::uint64_t t) { return static_cast<std::int64_t>(t); };
    const auto enter_args = args_records(100, {{"n", "3"}});
    const auto exit_args = args_records(150, {{"return", "7"}});
    ByteBuffer out;
    append_process_descriptor(1, process_track_uuid(42), 42, "app", {}, out);
    PerfettoSequence sequence(7, thread_track_uuid(42, 7), process_track_uuid(42));
    sequence.begin(100, 0, out);
    append_thread_descriptor(7, sequence.track_uuid(), process_track_uuid(42), 42, 43, "Main", out);
    // Four chunks: args | enter, plain calls, args | exit.
    sequence.encode(enter_args, to_ns, symbol, out);
    const std::vector<Record> middle = {
        {100, 0, EventKind::kEnter}, {110, 0, EventKind::kEnter}, {120, 0, EventKind::kExit}};
    sequence.encode(middle, to_ns, symbol, out);
    sequence.encode(exit_args, to_ns, symbol, out);
    const std::vector<Record> last = {{150, 0, EventKind::kExit}};
    sequence.encode(last, to_ns, symbol, out);

    PerfettoReader reader;
    std::vector<DecodedArgs> args;
    reader.on_slice = [&](const DecodedSlice& slice) {
        args.push_back(slice.args ? *slice.args : DecodedArgs{});
    };
    REQUIRE(reader.feed(out.view()));
    REQUIRE(reader.finish());
    REQUIRE(args.size() == 2);
    CHECK(args[0].empty());  // the inner call: no arguments of its own
    CHECK(args[1] == DecodedArgs{{"n", "3"}, {"return", "7"}});
}
