#include "tracer/one_line.hpp"

#include <fmt/format.h>

namespace vztrace::tracer {

namespace {

// The code point of the UTF-8 sequence at text[i] of `size` bytes (2 or 3), when it is
// one a terminal acts on or reorders by: a C1 control (U+0080 to U+009F; U+009B begins an
// escape sequence in xterm's UTF-8 mode), or a mark that turns the direction of what
// follows or breaks the line (U+061C, U+200E, U+200F, U+2028 to U+202E, U+2066 to U+2069):
// a name with U+202E shows its end reversed. 0 for any other.
char32_t invisible_control(std::string_view text, std::size_t i, std::size_t& size) {
    const auto at = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
    const auto lead = at(0);
    if (lead == 0xC2 && i + 1 < text.size() && at(1) >= 0x80 && at(1) <= 0x9F) {
        size = 2;
        return at(1);
    }
    if (lead == 0xD8 && i + 1 < text.size() && at(1) == 0x9C) {
        size = 2;
        return 0x061C;
    }
    if ((lead == 0xE2) && i + 2 < text.size()) {
        const char32_t code =
            (char32_t{lead & 0x0Fu} << 12) | (char32_t{at(1) & 0x3Fu} << 6) | (at(2) & 0x3Fu);
        if (code == 0x200E || code == 0x200F || (code >= 0x2028 && code <= 0x202E) ||
            (code >= 0x2066 && code <= 0x2069)) {
            size = 3;
            return code;
        }
    }
    return 0;
}

}  // namespace

std::string one_line(std::string_view text) {
    std::string line;
    line.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        const auto byte = static_cast<unsigned char>(c);
        std::size_t size = 0;
        if (byte >= 0x80) {
            if (const char32_t code = invisible_control(text, i, size); code != 0) {
                line += code <= 0xFF ? fmt::format("\\x{:02x}", static_cast<unsigned>(code))
                                     : fmt::format("\\u{:04x}", static_cast<unsigned>(code));
                i += size - 1;
            } else {
                line += c;
            }
        } else if (byte >= 0x20 && byte != 0x7F) {
            line += c;
        } else if (c == '\n') {
            line += "\\n";
        } else if (c == '\r') {
            line += "\\r";
        } else if (c == '\t') {
            line += "\\t";
        } else {
            line += fmt::format("\\x{:02x}", byte);
        }
    }
    return line;
}

}  // namespace vztrace::tracer
