#include "tracer/part_file.hpp"

#include <cstring>
#include <fstream>
#include <iterator>
#include <string_view>

namespace vztrace::tracer {
namespace {

constexpr std::string_view kMagic = "VZTRACE-PART-1\n";

class PartWriter {
 public:
    template <typename T>
    void value(const T& v) {
        bytes_.append(reinterpret_cast<const char*>(&v), sizeof v);
    }
    void text(const std::string& s) {
        value(static_cast<std::uint64_t>(s.size()));
        bytes_ += s;
    }
    void raw(const void* data, std::size_t size) {
        bytes_.append(static_cast<const char*>(data), size);
    }
    std::string& bytes() { return bytes_; }

 private:
    std::string bytes_;
};

class PartReader {
 public:
    explicit PartReader(std::string bytes) : bytes_(std::move(bytes)) {}
    template <typename T>
    bool value(T& v) {
        return raw(&v, sizeof v);
    }
    bool text(std::string& s) {
        std::uint64_t size = 0;
        if (!value(size) || size > bytes_.size() - at_) return false;
        s.assign(bytes_, at_, size);
        at_ += size;
        return true;
    }
    bool raw(void* data, std::size_t size) {
        if (size > bytes_.size() - at_) return false;
        std::memcpy(data, bytes_.data() + at_, size);
        at_ += size;
        return true;
    }
    bool magic() {
        if (bytes_.compare(0, kMagic.size(), kMagic) != 0) return false;
        at_ = kMagic.size();
        return true;
    }
    // The closing magic, and nothing after it.
    bool magic_at_end() {
        if (bytes_.size() - at_ != kMagic.size()) return false;
        return bytes_.compare(at_, kMagic.size(), kMagic) == 0;
    }

 private:
    std::string bytes_;
    std::size_t at_ = 0;
};

}  // namespace

bool write_part(const ProcessCapture& process, OutputFile& file) {
    PartWriter out;
    out.raw(kMagic.data(), kMagic.size());
    out.value(process.pid);
    out.text(process.name);
    out.value(process.mapping);
    out.value(process.end_ticks);
    const CaptureInfo& info = process.info;
    out.text(info.vztrace_version);
    out.text(info.python_version);
    out.text(info.hook);
    out.value(info.clock);
    out.value(info.realtime_offset_ns);
    out.value(info.max_memory);
    out.value(static_cast<std::uint8_t>(info.memory_cap_reached));
    out.value(static_cast<std::uint64_t>(process.symbols.size()));
    for (const auto& symbol : process.symbols) out.text(symbol);
    out.value(static_cast<std::uint64_t>(process.threads.size()));
    for (const auto& thread : process.threads) {
        out.value(thread.tid);
        out.text(thread.name);
        out.value(thread.dropped);
        std::uint64_t records = 0;
        for (const auto& chunk : thread.chunks) records += chunk.size();
        out.value(records);
        if (!file.write(out.bytes())) return false;
        out.bytes().clear();
        for (const auto& chunk : thread.chunks) {
            if (!file.write(std::string_view(reinterpret_cast<const char*>(chunk.data()),
                                             chunk.size_bytes()))) {
                return false;
            }
        }
    }
    out.raw(kMagic.data(), kMagic.size());  // a whole part ends as it begins
    return file.write(out.bytes()) && file.commit();
}

std::optional<ProcessCapture> read_part(const std::string& path, std::string& error) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        error = "cannot open " + path;
        return std::nullopt;
    }
    PartReader in(std::string(std::istreambuf_iterator<char>(file), {}));
    ProcessCapture process;
    CaptureInfo& info = process.info;
    std::uint8_t cap = 0;
    std::uint64_t count = 0;
    bool ok = in.magic() && in.value(process.pid) && in.text(process.name) &&
              in.value(process.mapping) && in.value(process.end_ticks) &&
              in.text(info.vztrace_version) && in.text(info.python_version) && in.text(info.hook) &&
              in.value(info.clock) && in.value(info.realtime_offset_ns) &&
              in.value(info.max_memory) && in.value(cap) && in.value(count);
    info.memory_cap_reached = cap != 0;
    for (std::uint64_t i = 0; ok && i < count; ++i) {
        ok = in.text(process.symbols.emplace_back());
    }
    ok = ok && in.value(count);
    for (std::uint64_t i = 0; ok && i < count; ++i) {
        ThreadCapture thread;
        std::uint64_t records = 0;
        ok = in.value(thread.tid) && in.text(thread.name) && in.value(thread.dropped) &&
             in.value(records) && records < (std::uint64_t{1} << 40);
        if (!ok) break;
        auto& storage = process.storage.emplace_back(records);
        ok = in.raw(storage.data(), records * sizeof(Record));
        thread.chunks.emplace_back(storage);
        process.threads.push_back(std::move(thread));
    }
    ok = ok && in.magic_at_end();
    if (!ok) {
        error = "incomplete or damaged part file " + path;
        return std::nullopt;
    }
    return process;
}

}  // namespace vztrace::tracer
