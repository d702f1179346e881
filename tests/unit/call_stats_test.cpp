// CallStats (tracer/analysis/call_stats.hpp): what report and diff total per function.
#include "tracer/analysis/call_stats.hpp"

#include <catch2/catch.hpp>
#include <cstdint>

using vztrace::analysis::CallStats;
using vztrace::analysis::GroupBy;

TEST_CASE("sums of times stop at the largest int64 rather than wrap negative") {
    // A JSON trace may hold calls of up to 73 years each (2.3e15 us, time_math.hpp): a few
    // of them overflowed every sum, and report printed negative times.
    constexpr std::int64_t kLong = 5'000'000'000'000'000'000;
    CallStats stats;
    stats.thread(1, 10, 10, "app", "main");
    stats.begin(1, "f", 0);
    stats.end(1, kLong);
    stats.begin(1, "f", 0);
    stats.end(1, kLong);
    const auto groups = stats.groups(GroupBy::kAll);
    REQUIRE(groups.size() == 1);
    REQUIRE(groups[0].functions.size() == 1);
    const auto& f = groups[0].functions[0];
    CHECK(f.calls == 2);
    CHECK(f.self_ns == INT64_MAX);
    CHECK(f.total_ns == INT64_MAX);
    CHECK(f.inclusive_ns == INT64_MAX);
    CHECK(f.max_ns == kLong);
    CHECK(groups[0].self_ns == INT64_MAX);
}

TEST_CASE("a call or a trace longer than int64's range reads as the largest int64") {
    // 4.6e15 us, past what the readers take (2.3e15 us): CallStats holds up on its own.
    constexpr std::int64_t kFar = 4'600'000'000'000'000'000;
    CallStats stats;
    stats.thread(1, 10, 10, "app", "main");
    stats.begin(1, "outer", -kFar);
    stats.begin(1, "inner", -kFar);
    stats.end(1, 2 * kFar);  // an X event at kFar lasting kFar
    stats.end(1, 2 * kFar);
    CHECK(stats.span_ns() == INT64_MAX);
    const auto groups = stats.groups(GroupBy::kThread);
    REQUIRE(groups.size() == 1);
    for (const auto& f : groups[0].functions) {
        INFO(f.name);
        CHECK(f.total_ns == INT64_MAX);
        CHECK(f.self_ns == (f.name == "inner" ? INT64_MAX : 0));
    }
}

TEST_CASE("a call that ends before it begins lasts 0") {
    CallStats stats;
    stats.thread(1, 10, 10, "app", "main");
    stats.begin(1, "f", 1000);
    stats.end(1, 400);
    const auto groups = stats.groups(GroupBy::kAll);
    const auto& f = groups.at(0).functions.at(0);
    CHECK(f.total_ns == 0);
    CHECK(f.self_ns == 0);
}
