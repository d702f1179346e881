// vztrace's options from a TOML file: `[tool.vztrace]` of the nearest pyproject.toml, or a
// file named with --config. This reads the file and checks its shape (TOML syntax, value
// types); which keys are options, and what their values mean, is command_line.cpp's.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vztrace::launcher {

// One `key = value` of the file, its value spelled as on the command line.
struct ConfigEntry {
    // kOtherArray: an array of anything but strings (no option takes one).
    enum class Kind { kBoolean, kNumber, kString, kStrings, kOtherArray };
    std::string key;                  // as written: "max_memory", "ignore-c-function"
    std::string where;                // for messages: "/p/pyproject.toml:3: [tool.vztrace] key"
    Kind kind = Kind::kString;        // what the file gave
    std::vector<std::string> values;  // one, or the array's items; a boolean: "true", "false"
};

struct ConfigFile {
    std::filesystem::path path;  // absolute
    std::vector<ConfigEntry> entries;
};

// The pyproject.toml nearest `start`: in it or the first of its parents that has one.
std::optional<std::filesystem::path> find_pyproject(const std::filesystem::path& start);

// Reads the options of `path`. A pyproject.toml (or any file with a top-level `tool`
// table) gives its `[tool.vztrace]` table: none means no options, unless `required`. Any
// other file gives its top-level keys. Throws SetupError(kUsage) with one line naming the
// file (and the line and column of a TOML syntax error).
ConfigFile read_config_file(const std::filesystem::path& path, bool required);

}  // namespace vztrace::launcher
