// ByteBuffer: a growable run of bytes that is never zero-filled, for encoders that write
// through a raw cursor (std::string::resize would clear what is about to be written).
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <string_view>

namespace vztrace::format {

class ByteBuffer {
 public:
    char* data() { return bytes_.get(); }
    const char* data() const { return bytes_.get(); }
    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    std::string_view view() const { return {bytes_.get(), size_}; }
    void clear() { size_ = 0; }
    void truncate(std::size_t size) { size_ = std::min(size, size_); }

    // Room for `more` bytes past the end; returns where they go.
    char* reserve_tail(std::size_t more) {
        if (capacity_ - size_ < more) grow(size_ + more);
        return bytes_.get() + size_;
    }
    // The bytes up to `end` (inside the reserved room) are now part of the buffer.
    void commit_to(const char* end) { size_ = static_cast<std::size_t>(end - bytes_.get()); }
    void append(std::string_view text) {
        std::memcpy(reserve_tail(text.size()), text.data(), text.size());
        size_ += text.size();
    }
    // Drops the first `count` bytes.
    void consume(std::size_t count) {
        std::memmove(bytes_.get(), bytes_.get() + count, size_ - count);
        size_ -= count;
    }

 private:
    void grow(std::size_t needed) {
        const std::size_t capacity = std::max(needed, std::max<std::size_t>(capacity_ * 2, 4096));
        std::unique_ptr<char[]> bytes(new char[capacity]);
        if (size_ > 0) std::memcpy(bytes.get(), bytes_.get(), size_);
        bytes_ = std::move(bytes);
        capacity_ = capacity;
    }

    std::unique_ptr<char[]> bytes_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

}  // namespace vztrace::format
