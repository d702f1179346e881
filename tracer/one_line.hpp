// Text for one line of stderr (or of a table): a control character in a name the user
// gave (a newline in a file's name) would break the line in two, an escape sequence would
// act on the terminal, and a mark of direction (U+202E) would show the rest reversed.
// Shown escaped instead, as Python's repr shows them: \n, \r, \t, \xNN, \uNNNN.
#pragma once

#include <string>
#include <string_view>

namespace vztrace::tracer {

std::string one_line(std::string_view text);

}  // namespace vztrace::tracer
