#include "tracer/format/chrome_json.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "tracer/format/perfetto_reader.hpp"

namespace vztrace::format {
namespace {

constexpr std::size_t kFlushBytes = std::size_t{4} << 20;

// Decimal digits of `value` at `out`; returns the end. Runs twice per event: no library
// formatting here.
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
    auto value = static_cast<std::uint64_t>(ns);
    if (ns < 0) {
        *out++ = '-';
        value = std::uint64_t{0} - value;  // INT64_MIN too
    }
    out = put_uint(out, value / 1000);
    const auto frac = static_cast<unsigned>(value % 1000);
    out[0] = '.';
    out[1] = static_cast<char>('0' + frac / 100);
    out[2] = static_cast<char>('0' + frac / 10 % 10);
    out[3] = static_cast<char>('0' + frac % 10);
    return out + 4;
}

}  // namespace

namespace {

// The length of the well-formed UTF-8 sequence at `at` (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF), or 0.
std::size_t utf8_sequence(const unsigned char* at, std::size_t left) {
    const unsigned lead = at[0];
    const auto continuation = [&](std::size_t i, unsigned low = 0x80, unsigned high = 0xBF) {
        return i < left && at[i] >= low && at[i] <= high;
    };
    if (lead >= 0xC2 && lead <= 0xDF) return continuation(1) ? 2 : 0;
    if (lead >= 0xE0 && lead <= 0xEF) {
        const unsigned low = lead == 0xE0 ? 0xA0 : 0x80;
        const unsigned high = lead == 0xED ? 0x9F : 0xBF;
        return continuation(1, low, high) && continuation(2) ? 3 : 0;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        const unsigned low = lead == 0xF0 ? 0x90 : 0x80;
        const unsigned high = lead == 0xF4 ? 0x8F : 0xBF;
        return continuation(1, low, high) && continuation(2) && continuation(3) ? 4 : 0;
    }
    return 0;
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

std::string valid_utf8(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
    for (std::size_t i = 0; i < text.size();) {
        if (bytes[i] < 0x80) {
            out.push_back(text[i++]);
            continue;
        }
        const std::size_t length = utf8_sequence(bytes + i, text.size() - i);
        if (length == 0) {
            out += kReplacement;
            ++i;
        } else {
            out.append(text.substr(i, length));
            i += length;
        }
    }
    return out;
}

std::string micros_text(std::int64_t ns) {
    char digits[32];
    return std::string(digits, static_cast<std::size_t>(put_micros(digits, ns) - digits));
}

void append_json_string(std::string& out, std::string_view text) {
    out.push_back('"');
    const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
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
                if (bytes[i] < 0x20) {
                    out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
                } else if (bytes[i] < 0x80) {
                    out.push_back(c);
                } else if (const std::size_t n = utf8_sequence(bytes + i, text.size() - i); n) {
                    out.append(text.substr(i, n));
                    i += n - 1;
                } else {
                    // JSON is UTF-8: a byte that is not (a file name, argv) becomes U+FFFD.
                    out += kReplacement;
                }
        }
    }
    out.push_back('"');
}

ChromeJsonEncoder::ChromeJsonEncoder(std::function<bool(std::string_view)> write)
    : write_(std::move(write)) {
    buffer_ = "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n";
}

bool ChromeJsonEncoder::flush(bool force) {
    if (failed_) return false;
    if (!force && buffer_.size() < kFlushBytes) return true;
    if (!write_(buffer_)) {
        failed_ = true;
        return false;
    }
    buffer_.clear();
    return true;
}

bool ChromeJsonEncoder::add_stream(const std::string& path, bool cut_short_ok, int fd) {
    PerfettoReader reader;
    // Names are escaped once per interned name (the reader keeps each name at one place).
    std::unordered_map<const char*, std::string> quoted;
    std::string prefix;
    std::uint64_t prefix_track = ~std::uint64_t{0};
    bool prefix_calls = true;  // its slices are calls: not a named track's (a task's steps)
    bool ok = true;
    // A named track (an asyncio task's) is a thread of its own (NamedTrackTids).
    const auto ids_of = [&](std::uint64_t uuid) -> std::pair<std::int64_t, std::int64_t> {
        const auto track = reader.tracks().find(uuid);
        if (track == reader.tracks().end()) return {0, 0};
        const TrackInfo& info = track->second;
        if (info.is_process) return {info.pid, info.pid};
        if (info.is_thread) return {info.pid, info.tid};
        return {info.pid, track_tids_.of(uuid)};
    };
    // Complete events of one begin on a track nest, in Perfetto and chrome://tracing, in the
    // order of the file: the first is the parent. The reader gives a stream's slices as they
    // end, innermost first, and the calls a ring's cut began all begin at the cut: such
    // calls (flagged unfinished) are held, each track's of one begin together, and written
    // outermost first once no more can join them. The others are written as they come: no
    // two of them begin at the same nanosecond on a track.
    struct Held {
        std::int64_t begin_ns = 0;
        std::vector<std::string> events;  // innermost first, without the separator
    };
    std::unordered_map<std::uint64_t, Held> held;  // by track
    const auto release = [&](Held& group) {
        for (auto event = group.events.rbegin(); event != group.events.rend(); ++event) {
            if (!first_event_) buffer_ += ',';
            first_event_ = false;
            buffer_ += *event;
        }
        group.events.clear();
    };
    reader.on_slice = [&](const DecodedSlice& slice) {
        if (!ok) return;
        if (slice.track_uuid != prefix_track) {
            const auto [pid, tid] = ids_of(slice.track_uuid);
            prefix = fmt::format(R"({{"ph":"X","cat":"FEE","pid":{},"tid":{},"ts":)", pid, tid);
            prefix_track = slice.track_uuid;
            prefix_calls = !reader.is_named_track(slice.track_uuid);
        }
        auto [name, added] = quoted.try_emplace(slice.name.data());
        if (added) append_json_string(name->second, slice.name);
        const std::size_t at = buffer_.size();
        buffer_.resize(at + prefix.size() + name->second.size() + 96);
        char* out = buffer_.data() + at;
        if (!slice.unfinished) {
            if (!first_event_) *out++ = ',';
            first_event_ = false;
        }
        std::memcpy(out, prefix.data(), prefix.size());
        out += prefix.size();
        out = put_micros(out, slice.begin_ns);
        std::memcpy(out, ",\"dur\":", 7);
        out = put_micros(out + 7, slice.end_ns - slice.begin_ns);
        std::memcpy(out, ",\"name\":", 8);
        out += 8;
        std::memcpy(out, name->second.data(), name->second.size());
        out += name->second.size();
        buffer_.resize(static_cast<std::size_t>(out - buffer_.data()));
        if (slice.unfinished || slice.args != nullptr) {
            buffer_ += R"(,"args":{)";
            if (slice.unfinished) {
                buffer_ += R"("unfinished":true)";
                if (prefix_calls) ++unfinished_;
            }
            if (slice.args != nullptr) append_args(*slice.args, !slice.unfinished);
            buffer_ += '}';
        }
        buffer_ += "}\n";
        if (prefix_calls) ++slices_;
        if (slice.unfinished) {
            std::string event = buffer_.substr(at);
            buffer_.resize(at);
            Held& group = held[slice.track_uuid];
            if (!group.events.empty() && group.begin_ns != slice.begin_ns) release(group);
            group.begin_ns = slice.begin_ns;
            group.events.push_back(std::move(event));
        }
        ok = flush(false);
    };
    reader.on_instant = [&](const DecodedInstant& instant) {
        if (!ok) return;
        const auto [pid, tid] = ids_of(instant.track_uuid);
        if (!first_event_) buffer_ += ',';
        first_event_ = false;
        buffer_ += fmt::format(R"({{"ph":"i","s":"t","pid":{},"tid":{},"ts":)", pid, tid);
        char digits[32];
        buffer_.append(digits,
                       static_cast<std::size_t>(put_micros(digits, instant.at_ns) - digits));
        buffer_ += ",\"name\":";
        append_json_string(buffer_, instant.name);
        if (!instant.args.empty()) {
            buffer_ += R"(,"args":{)";
            append_args(instant.args, true);
            buffer_ += '}';
        }
        buffer_ += "}\n";
        ok = flush(false);
    };
    reader.on_counter = [&](const DecodedCounter& counter) {
        if (!ok) return;
        const auto track = reader.tracks().find(counter.track_uuid);
        if (track == reader.tracks().end()) return;
        if (!first_event_) buffer_ += ',';
        first_event_ = false;
        buffer_ += fmt::format(R"({{"ph":"C","pid":{},"tid":{},"ts":)", track->second.pid,
                               track->second.pid);
        char digits[32];
        buffer_.append(digits,
                       static_cast<std::size_t>(put_micros(digits, counter.at_ns) - digits));
        buffer_ += ",\"name\":";
        append_json_string(buffer_, track->second.name);
        // JSON has no NaN or infinity: such a sample is written as null.
        if (std::isfinite(counter.value)) {
            buffer_ += fmt::format(R"(,"args":{{"value":{}}}}})", counter.value);
        } else {
            buffer_ += R"(,"args":{"value":null}})";
        }
        buffer_ += '\n';
        ok = flush(false);
    };
    const bool read = fd >= 0 ? reader.read_descriptor(fd, path, {}) : reader.read_file(path);
    if (!read && !(cut_short_ok && reader.truncated())) {
        error_ = reader.error();
        return false;
    }
    reader.close_open_calls();
    if (!ok) return false;
    for (auto& [track, group] : held) release(group);
    for (const auto& [uuid, track] : reader.tracks()) {
        if (track.is_counter) continue;  // a "C" event's name is its track's
        const auto [pid, tid] = ids_of(uuid);
        if (!first_event_) buffer_ += ',';
        first_event_ = false;
        buffer_ += fmt::format(R"({{"ph":"M","name":"{}","pid":{},"tid":{},"args":{{"name":)",
                               track.is_process ? "process_name" : "thread_name", pid, tid);
        append_json_string(buffer_, track.name);
        buffer_ += "}}\n";
        if (!track.is_process && !track.is_thread) {
            buffer_ += fmt::format(
                R"(,{{"ph":"M","name":"{}","pid":{},"tid":{},"args":{{"name":"asyncio task"}}}})"
                "\n",
                kNamedTrackMark, pid, tid);
        }
    }
    return flush(false);
}

void ChromeJsonEncoder::append_args(const std::vector<std::pair<std::string, std::string>>& args,
                                    bool first) {
    for (const auto& [name, value] : args) {
        if (!first) buffer_ += ',';
        first = false;
        append_json_string(buffer_, name);
        buffer_ += ':';
        append_json_string(buffer_, value);
    }
}

bool ChromeJsonEncoder::finish(const std::vector<std::pair<std::string, std::string>>& metadata) {
    buffer_ += "],\n\"vztrace_metadata\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
        if (!first) buffer_ += ',';
        first = false;
        append_json_string(buffer_, key);
        buffer_ += ':';
        buffer_ += value;
    }
    buffer_ += "}}\n";
    return flush(true);
}

}  // namespace vztrace::format
