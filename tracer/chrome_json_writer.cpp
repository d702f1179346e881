#include "tracer/chrome_json_writer.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cstring>

namespace vztrace::tracer {
namespace {

constexpr std::size_t kBufferBytes = std::size_t{8} << 20;

// Decimal digits of `value` at `out`; returns the end. The writer's inner loop runs this
// twice per event, so no library formatting here.
char* put_uint(char* out, std::uint64_t value) {
    char digits[20];
    char* first = digits + sizeof digits;
    do {
        *--first = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value != 0);
    const auto count = static_cast<std::size_t>(digits + sizeof digits - first);
    std::memcpy(out, first, count);
    return out + count;
}

// Microseconds with nanosecond digits: 1234567891 ns -> "1234567.891".
char* put_micros(char* out, std::int64_t ns) {
    if (ns < 0) {
        *out++ = '-';
        ns = -ns;
    }
    const auto value = static_cast<std::uint64_t>(ns);
    out = put_uint(out, value / 1000);
    const auto frac = static_cast<unsigned>(value % 1000);
    out[0] = '.';
    out[1] = static_cast<char>('0' + frac / 100);
    out[2] = static_cast<char>('0' + frac / 10 % 10);
    out[3] = static_cast<char>('0' + frac % 10);
    return out + 4;
}

char* put(char* out, std::string_view text) {
    std::memcpy(out, text.data(), text.size());
    return out + text.size();
}

void append_uint(std::string& out, std::uint64_t value) {
    const fmt::format_int text(value);
    out.append(text.data(), text.size());
}

void append_name_event(std::string& out, std::string_view kind, std::int64_t pid, std::uint64_t tid,
                       std::string_view name) {
    out += R"({"ph":"M","name":")";
    out += kind;
    out += R"(","pid":)";
    append_uint(out, static_cast<std::uint64_t>(pid));
    out += R"(,"tid":)";
    append_uint(out, tid);
    out += R"(,"args":{"name":)";
    append_json_string(out, name);
    out += "}},\n";
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
    out.push_back('"');
    for (const char c : text) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
                } else {
                    out.push_back(c);
                }
        }
    }
    out.push_back('"');
}

bool ChromeJsonWriter::write(const Capture& capture, OutputFile& file, WriteStats& stats) {
    const auto started = std::chrono::steady_clock::now();

    std::string head = "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n";
    for (const auto& process : capture.processes) {
        append_name_event(head, "process_name", process.pid,
                          static_cast<std::uint64_t>(process.pid), process.name);
        for (const auto& thread : process.threads) {
            append_name_event(head, "thread_name", process.pid, thread.tid, thread.name);
        }
    }

    // Events are formatted at a raw cursor into a large buffer, handed to the writing
    // thread when the room left could not hold the largest possible event.
    BackgroundWriter sink(file);
    std::string buffer(std::max(kBufferBytes, 2 * head.size()), '\0');
    char* cursor = put(buffer.data(), head);
    auto flush = [&](std::size_t room) {
        buffer = sink.exchange(std::move(buffer), static_cast<std::size_t>(cursor - buffer.data()));
        if (buffer.size() < room) buffer.resize(room);
        cursor = buffer.data();
    };
    // Set once a buffer has gone to the writing thread (with its last event's comma).
    bool flushed_comma = false;

    constexpr std::string_view kUnfinished = R"(,"args":{"unfinished":true})";
    for (const auto& process : capture.processes) {
        // Every name is escaped once; an event then copies it.
        std::vector<std::string> names;
        names.reserve(process.symbols.size());
        std::size_t longest_name = 0;
        for (const auto& symbol : process.symbols) {
            std::string quoted;
            append_json_string(quoted, symbol);
            longest_name = std::max(longest_name, quoted.size());
            names.push_back(std::move(quoted));
        }
        for (const auto& thread : process.threads) {
            const std::string prefix = fmt::format(
                R"({{"ph":"X","cat":"FEE","pid":{},"tid":{},"ts":)", process.pid, thread.tid);
            const std::size_t largest_event = prefix.size() + longest_name + 2 * 26 + 64;
            const std::size_t size = std::max(kBufferBytes, 4 * largest_event);
            if (buffer.size() < size) {
                const auto used = static_cast<std::size_t>(cursor - buffer.data());
                buffer.resize(size);
                cursor = buffer.data() + used;
            }
            char* limit = buffer.data() + buffer.size() - largest_event;
            for_each_slice(thread, process.end_ticks, [&](const Slice& slice) {
                if (VZ_UNLIKELY(cursor > limit)) {
                    flushed_comma = true;
                    flush(size);
                    limit = buffer.data() + buffer.size() - largest_event;
                }
                const std::int64_t begin = process.mapping.to_ns(slice.begin_ticks);
                const std::int64_t end = process.mapping.to_ns(slice.end_ticks);
                cursor = put(cursor, prefix);
                cursor = put_micros(cursor, begin);
                cursor = put(cursor, ",\"dur\":");
                cursor = put_micros(cursor, end - begin);
                cursor = put(cursor, ",\"name\":");
                cursor = put(cursor, names[slice.symbol]);
                if (VZ_UNLIKELY(slice.unfinished)) {
                    cursor = put(cursor, kUnfinished);
                    ++stats.unfinished;
                }
                cursor = put(cursor, "},\n");
                ++stats.slices;
            });
        }
    }
    // Every event ends with ",\n"; JSON wants no comma after the last one.
    if (cursor - buffer.data() >= 2 && cursor[-2] == ',' && cursor[-1] == '\n') {
        cursor -= 2;
    } else if (flushed_comma) {
        // The last comma went out with an earlier buffer, and this one holds no event:
        // close with a harmless one.
        cursor = put(cursor, R"({"ph":"M","name":"vztrace_end","pid":0,"tid":0,"args":{}})");
    }
    buffer = sink.exchange(std::move(buffer), static_cast<std::size_t>(cursor - buffer.data()));
    const bool events_ok = sink.finish();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    stats.seconds = seconds;
    if (!events_ok) return false;

    const CaptureInfo& info = capture.processes.front().info;
    std::string out;
    bool cap_reached = false;
    for (const auto& process : capture.processes) cap_reached |= process.info.memory_cap_reached;
    const std::string missing = fmt::format("{}", fmt::join(capture.missing_pids, ","));
    const std::string killed = fmt::format("{}", fmt::join(capture.killed_before_start_pids, ","));
    out += "\n],\n\"vztrace_metadata\":{";
    out += fmt::format(R"("version":"{}","python":"{}","hook":"{}","clock":"{}",)",
                       info.vztrace_version, info.python_version, info.hook, to_string(info.clock));
    out += fmt::format(R"("realtime_offset_ns":{},"processes":{},"missing_pids":[{}],)"
                       R"("killed_before_start_pids":[{}],"events":{},"slices":{},)",
                       info.realtime_offset_ns, capture.processes.size(), missing, killed,
                       count_events(capture), stats.slices);
    out += fmt::format(
        R"("unfinished_calls":{},"dropped_events":{},"memory_cap_reached":{},"max_memory":{},)",
        stats.unfinished, count_dropped(capture), cap_reached ? "true" : "false", info.max_memory);
    out += fmt::format(R"("write_seconds":{:.6f}}}}})", seconds);
    out += "\n";
    const bool ok = file.write(out) && file.commit();
    stats.bytes = file.bytes_written();
    return ok;
}

}  // namespace vztrace::tracer
