#include "tracer/one_line.hpp"

#include <fmt/format.h>

namespace vztrace::tracer {

std::string one_line(std::string_view text) {
    std::string line;
    line.reserve(text.size());
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte >= 0x20 && byte != 0x7F) {
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
