// Protocol buffers' wire format, by hand: varints, tags and length-delimited fields, as
// the encoding spec (protobuf.dev/programming-guides/encoding) defines them. The hot
// loops write through a raw cursor; ProtoMessage builds the rare, small messages.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace vztrace::format::wire {

enum WireType : std::uint32_t { kVarint = 0, kFixed64 = 1, kLength = 2, kFixed32 = 5 };

constexpr std::uint32_t tag(std::uint32_t field, WireType type) { return field << 3 | type; }

constexpr std::size_t varint_size(std::uint64_t value) {
    std::size_t size = 1;
    while (value >= 0x80) {
        value >>= 7;
        ++size;
    }
    return size;
}

inline char* put_varint(char* out, std::uint64_t value) {
    while (value >= 0x80) {
        *out++ = static_cast<char>(value | 0x80);
        value >>= 7;
    }
    *out++ = static_cast<char>(value);
    return out;
}

inline void append_varint(std::string& out, std::uint64_t value) {
    char bytes[10];
    out.append(bytes, static_cast<std::size_t>(put_varint(bytes, value) - bytes));
}

// A message built field by field; nested messages are built first and added whole.
class ProtoMessage {
 public:
    ProtoMessage& varint(std::uint32_t field, std::uint64_t value) {
        append_varint(bytes_, tag(field, kVarint));
        append_varint(bytes_, value);
        return *this;
    }
    ProtoMessage& sint(std::uint32_t field, std::int64_t value) {  // int64 (not zigzag)
        return varint(field, static_cast<std::uint64_t>(value));
    }
    ProtoMessage& boolean(std::uint32_t field, bool value) { return varint(field, value ? 1 : 0); }
    ProtoMessage& fixed64(std::uint32_t field, std::uint64_t value) {
        append_varint(bytes_, tag(field, kFixed64));
        char raw[8];
        std::memcpy(raw, &value, 8);  // little-endian host (x86-64)
        bytes_.append(raw, 8);
        return *this;
    }
    ProtoMessage& real(std::uint32_t field, double value) {
        std::uint64_t bits = 0;
        std::memcpy(&bits, &value, 8);
        return fixed64(field, bits);
    }
    ProtoMessage& bytes(std::uint32_t field, std::string_view value) {
        append_varint(bytes_, tag(field, kLength));
        append_varint(bytes_, value.size());
        bytes_.append(value);
        return *this;
    }
    ProtoMessage& message(std::uint32_t field, const ProtoMessage& nested) {
        return bytes(field, nested.bytes_);
    }
    // Fields already encoded, appended as they are.
    ProtoMessage& raw(std::string_view fields) {
        bytes_.append(fields);
        return *this;
    }
    const std::string& data() const { return bytes_; }
    bool empty() const { return bytes_.empty(); }

 private:
    std::string bytes_;
};

// Reads a message's fields in order. Every read is bounds-checked: a damaged message
// ends the walk with ok() false, never a read past the end.
class ProtoReader {
 public:
    ProtoReader() = default;
    explicit ProtoReader(std::string_view bytes)
        : at_(bytes.data()), end_(bytes.data() + bytes.size()) {}

    // Advances to the next field; false at the end or on damage (then ok() is false).
    bool next() {
        if (at_ == end_) return false;
        std::uint64_t key = 0;
        if (!read_varint(key)) return fail();
        field_ = static_cast<std::uint32_t>(key >> 3);
        type_ = static_cast<WireType>(key & 7);
        // No message has a field 0: zeroed bytes (a block lost in a crash) are damage, not
        // fields to skip, which lost the calls in them without a word.
        if (field_ == 0) return fail();
        switch (type_) {
            case kVarint:
                return read_varint(value_) || fail();
            case kFixed64:
                if (end_ - at_ < 8) return fail();
                std::memcpy(&value_, at_, 8);
                at_ += 8;
                return true;
            case kFixed32: {
                if (end_ - at_ < 4) return fail();
                std::uint32_t v = 0;
                std::memcpy(&v, at_, 4);
                value_ = v;
                at_ += 4;
                return true;
            }
            case kLength: {
                std::uint64_t size = 0;
                if (!read_varint(size) || size > static_cast<std::uint64_t>(end_ - at_))
                    return fail();
                bytes_ = std::string_view(at_, static_cast<std::size_t>(size));
                at_ += size;
                return true;
            }
            default:
                return fail();
        }
    }
    std::uint32_t field() const { return field_; }
    WireType type() const { return type_; }
    std::uint64_t value() const { return value_; }
    std::int64_t as_int() const { return static_cast<std::int64_t>(value_); }
    double as_double() const {
        double d = 0;
        std::memcpy(&d, &value_, 8);
        return d;
    }
    std::string_view bytes() const { return bytes_; }
    ProtoReader nested() const { return ProtoReader(bytes_); }
    bool ok() const { return ok_; }
    // Where the reader is: the start of the next field.
    const char* position() const { return at_; }

 private:
    bool read_varint(std::uint64_t& out) {
        out = 0;
        for (int shift = 0; shift < 64 && at_ != end_; shift += 7) {
            const auto byte = static_cast<std::uint8_t>(*at_++);
            out |= std::uint64_t{byte & 0x7FU} << shift;
            if ((byte & 0x80) == 0) return true;
        }
        return false;
    }
    bool fail() {
        ok_ = false;
        at_ = end_;
        return false;
    }

    const char* at_ = nullptr;
    const char* end_ = nullptr;
    std::uint32_t field_ = 0;
    WireType type_ = kVarint;
    std::uint64_t value_ = 0;
    std::string_view bytes_;
    bool ok_ = true;
};

}  // namespace vztrace::format::wire
