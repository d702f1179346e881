#include "tracer/chrome_json_writer.hpp"

#include <fmt/format.h>

#include <chrono>

namespace vztrace::tracer {
namespace {

constexpr std::size_t kFlushBytes = std::size_t{4} << 20;

// Microseconds with nanosecond digits: 1234567891 ns -> "1234567.891".
void append_micros(std::string& out, std::int64_t ns) {
    if (ns < 0) {
        out.push_back('-');
        ns = -ns;
    }
    const fmt::format_int whole(ns / 1000);
    out.append(whole.data(), whole.size());
    const auto frac = static_cast<int>(ns % 1000);
    const char digits[4] = {'.', static_cast<char>('0' + frac / 100),
                            static_cast<char>('0' + frac / 10 % 10),
                            static_cast<char>('0' + frac % 10)};
    out.append(digits, 4);
}

void append_uint(std::string& out, std::uint64_t value) {
    const fmt::format_int text(value);
    out.append(text.data(), text.size());
}

void append_name_event(std::string& out, std::string_view kind, std::int64_t pid,
                       std::uint64_t tid, std::string_view name) {
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
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
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
    std::string out;
    out.reserve(kFlushBytes + (std::size_t{64} << 10));

    // Every name is escaped once; an event then copies it.
    std::vector<std::string> names;
    names.reserve(capture.symbols.size());
    for (const auto& symbol : capture.symbols) {
        std::string quoted;
        append_json_string(quoted, symbol);
        names.push_back(std::move(quoted));
    }

    out += "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n";
    for (const auto& process : capture.processes) {
        append_name_event(out, "process_name", process.pid,
                          static_cast<std::uint64_t>(process.pid), process.name);
        for (const auto& thread : process.threads) {
            append_name_event(out, "thread_name", process.pid, thread.tid, thread.name);
            const std::string prefix =
                fmt::format(R"({{"ph":"X","cat":"FEE","pid":{},"tid":{},"ts":)", process.pid,
                            thread.tid);
            bool ok = true;
            for_each_slice(thread, capture.end_ticks, [&](const Slice& slice) {
                const std::int64_t begin = capture.mapping.to_ns(slice.begin_ticks);
                const std::int64_t end = capture.mapping.to_ns(slice.end_ticks);
                out += prefix;
                append_micros(out, begin);
                out += ",\"dur\":";
                append_micros(out, end - begin);
                out += ",\"name\":";
                out += names[slice.symbol];
                if (VZ_UNLIKELY(slice.unfinished)) {
                    out += ",\"args\":{\"unfinished\":true}";
                    ++stats.unfinished;
                }
                out += "},\n";
                ++stats.slices;
                if (VZ_UNLIKELY(out.size() >= kFlushBytes)) {
                    ok = ok && file.write(out);
                    out.clear();
                }
            });
            if (!ok) return false;
        }
    }
    // The last event ends with ",\n"; JSON wants none after the last element.
    if (out.size() >= 2 && out[out.size() - 2] == ',') {
        out.resize(out.size() - 2);
    } else {
        // The trailing comma went out with an earlier flush: close with a harmless event.
        out += R"({"ph":"M","name":"vztrace_end","pid":0,"tid":0,"args":{}})";
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    stats.seconds = seconds;

    const CaptureInfo& info = capture.info;
    out += "\n],\n\"vztrace_metadata\":{";
    out += fmt::format(R"("version":"{}","python":"{}","hook":"{}","clock":"{}",)",
                       info.vztrace_version, info.python_version, info.hook,
                       to_string(info.clock));
    out += fmt::format(
        R"("realtime_offset_ns":{},"events":{},"slices":{},"unfinished_calls":{},)",
        info.realtime_offset_ns, count_events(capture), stats.slices, stats.unfinished);
    out += fmt::format(
        R"("dropped_events":{},"memory_cap_reached":{},"max_memory":{},"write_seconds":{:.6f}}}}})",
        count_dropped(capture), info.memory_cap_reached ? "true" : "false", info.max_memory,
        seconds);
    out += "\n";
    const bool ok = file.write(out) && file.commit();
    stats.bytes = file.bytes_written();
    return ok;
}

}  // namespace vztrace::tracer
