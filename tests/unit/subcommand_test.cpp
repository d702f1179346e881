// What the after-run tools share for their tables (launcher/subcommand.hpp): names cut to
// the terminal's width, and markdown cells.
#include "launcher/subcommand.hpp"

#include <catch2/catch.hpp>
#include <string>

using vztrace::launcher::fitted;
using vztrace::launcher::markdown_cell;
using vztrace::launcher::markdown_code;

namespace {

bool valid_utf8(const std::string& text) {
    int owed = 0;  // continuation bytes the last lead byte announced
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (owed > 0) {
            if ((byte >> 6) != 2) return false;
            --owed;
        } else if (byte >= 0xF8 || (byte >= 0x80 && byte < 0xC0)) {
            return false;
        } else {
            owed = byte >= 0xF0 ? 3 : byte >= 0xE0 ? 2 : byte >= 0xC0 ? 1 : 0;
        }
    }
    return owed == 0;
}

}  // namespace

TEST_CASE("a name too wide is cut to the columns asked, start and end kept") {
    CHECK(fitted("short", 10) == "short");
    CHECK(fitted("short", 0) == "short");
    CHECK(fitted("abcdefghijklmnopqrstuvwxyz", 11) == "abcd...wxyz");
    CHECK(fitted("abcdefghijklmnopqrstuvwxyz", 11).size() == 11);
}

TEST_CASE("a name is never cut inside a UTF-8 character, whatever the width") {
    // Every width from 4 to the whole: 2-byte (ü, ï), 3-byte (函) and 4-byte (😀) characters.
    // The cut fell inside them at some widths (invalid UTF-8 in the table).
    const std::string name =
        "f\xC3\xBCnf (/src/\xC3\xBCn\xC3\xAF/\xE5\x87\xBD\xE6\x95\xB0/"
        "\xF0\x9F\x98\x80.py:3)";
    for (std::size_t width = 4; width < name.size() + 2; ++width) {
        INFO(width);
        const std::string cut = fitted(name, width);
        CHECK(valid_utf8(cut));
    }
    // Wide characters take two columns: four of them fit in 8, with nothing cut.
    const std::string wide = "\xE5\x87\xBD\xE6\x95\xB0\xE5\x87\xBD\xE6\x95\xB0";
    CHECK(fitted(wide, 8) == wide);
    CHECK(fitted(wide, 7) == "\xE5\x87\xBD...\xE6\x95\xB0");  // 2 + 3 + 2 columns
}

TEST_CASE("control characters in a name are shown escaped, not written into the table") {
    CHECK(fitted("a\nb\tc\x01", 0) == "a\\nb\\tc\\x01");
    // C1 controls (U+009B begins an escape sequence) and marks of direction, as Python's
    // repr shows them; other characters beyond ASCII as they are.
    CHECK(fitted("\xC2\x9B"
                 "31mC1",
                 0) == "\\x9b31mC1");
    CHECK(fitted("abc\xE2\x80\xAE"
                 "dcba",
                 0) == "abc\\u202edcba");
    CHECK(fitted("\xE2\x81\xA6x\xE2\x80\xA8y\xD8\x9C", 0) == "\\u2066x\\u2028y\\u061c");
    CHECK(fitted("caf\xC3\xA9 \xE2\x80\x94 \xE5\x87\xBD", 0) ==
          "caf\xC3\xA9 \xE2\x80\x94 \xE5\x87\xBD");
}

TEST_CASE("a markdown heading's text makes no link, image, HTML or emphasis") {
    CHECK(markdown_cell("[click](https://e.example) ![i](x.png) <b>*a*_b_</b> a|b") ==
          "\\[click\\](https://e.example) \\!\\[i\\](x.png) \\<b\\>\\*a\\*\\_b\\_\\</b\\> a\\|b");
    CHECK(markdown_cell("MainThread (python3.12)") == "MainThread (python3.12)");
}

TEST_CASE("a name with backticks stays one code span in a markdown table") {
    CHECK(markdown_code("plain") == "`plain`");
    CHECK(markdown_code("a`b") == "``a`b``");
    CHECK(markdown_code("`x``") == "``` `x`` ```");
    CHECK(markdown_code("a|b") == "`a\\|b`");
}
