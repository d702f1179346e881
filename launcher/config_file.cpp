#include "launcher/config_file.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "embed/setup_error.hpp"

namespace vztrace::launcher {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void config_error(const std::string& message) {
    throw SetupError(ExitCode::kUsage, message);
}

// The entry of one `key = value`, or a usage error naming the key when the value is not
// one an option can take (a table, a date, an array of anything but strings).
ConfigEntry entry_of(const std::string& key, const toml::node& node, const std::string& where) {
    ConfigEntry entry;
    entry.key = key;
    entry.where = where;
    if (const auto* flag = node.as_boolean()) {
        entry.kind = ConfigEntry::Kind::kBoolean;
        entry.values.push_back(flag->get() ? "true" : "false");
    } else if (const auto* integer = node.as_integer()) {
        entry.kind = ConfigEntry::Kind::kNumber;
        entry.values.push_back(std::to_string(integer->get()));
    } else if (const auto* real = node.as_floating_point()) {
        entry.kind = ConfigEntry::Kind::kNumber;
        entry.values.push_back(fmt::format("{}", real->get()));
    } else if (const auto* text = node.as_string()) {
        entry.kind = ConfigEntry::Kind::kString;
        entry.values.push_back(text->get());
    } else if (const auto* array = node.as_array()) {
        entry.kind = ConfigEntry::Kind::kStrings;
        for (const toml::node& item : *array) {
            const auto* item_text = item.as_string();
            if (item_text == nullptr) {  // the option it is for says what it expected
                entry.kind = ConfigEntry::Kind::kOtherArray;
                entry.values.clear();
                break;
            }
            entry.values.push_back(item_text->get());
        }
    } else {
        config_error(fmt::format(
            "{}: expected a boolean, a number, a string or an array of strings", where));
    }
    return entry;
}

}  // namespace

std::optional<fs::path> find_pyproject(const fs::path& start) {
    std::error_code error;
    for (fs::path dir = start;; dir = dir.parent_path()) {
        fs::path candidate = dir / "pyproject.toml";
        if (fs::is_regular_file(candidate, error)) return candidate;
        if (dir == dir.parent_path() || dir.empty()) return std::nullopt;
    }
}

ConfigFile read_config_file(const fs::path& path, bool required) {
    std::error_code ignored;
    ConfigFile config{fs::absolute(path, ignored).lexically_normal(), {}};
    const std::string name = config.path.string();
    std::ifstream in(config.path, std::ios::binary);
    std::ostringstream text;
    if (!in || !(text << in.rdbuf())) {
        config_error(fmt::format("cannot read config file '{}': {}", name, std::strerror(errno)));
    }
    toml::table document;
    try {
        document = toml::parse(text.str(), name);
    } catch (const toml::parse_error& error) {
        config_error(fmt::format("{}:{}:{}: invalid TOML: {}", name, error.source().begin.line,
                                 error.source().begin.column, error.description()));
    }

    const bool pyproject = config.path.filename() == "pyproject.toml" || document.contains("tool");
    const toml::table* options = &document;
    std::string prefix;
    if (pyproject) {
        const toml::node* table = document.at_path("tool.vztrace").node();
        if (table == nullptr) {
            if (required) config_error(fmt::format("{}: no [tool.vztrace] table", name));
            return config;
        }
        options = table->as_table();
        if (options == nullptr) config_error(fmt::format("{}: tool.vztrace is not a table", name));
        prefix = "[tool.vztrace] ";
    }
    // In the file's order (the table iterates its keys sorted): a key set twice under two
    // spellings is reported at its later line, as the one that repeats the earlier.
    std::vector<std::pair<std::uint32_t, ConfigEntry>> ordered;
    for (const auto& [key, node] : *options) {
        const std::string where =
            fmt::format("{}:{}: {}{}", name, key.source().begin.line, prefix, key.str());
        ordered.emplace_back(key.source().begin.line,
                             entry_of(std::string(key.str()), node, where));
    }
    std::stable_sort(ordered.begin(), ordered.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [line, entry] : ordered) config.entries.push_back(std::move(entry));
    return config;
}

}  // namespace vztrace::launcher
