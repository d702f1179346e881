#include "tracer/temp_places.hpp"

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace vztrace::tracer {

std::vector<std::string> temp_places() {
    namespace fs = std::filesystem;
    std::vector<fs::path> places;
    for (const char* name : {"TMPDIR", "TEMP", "TMP"}) {
        const char* value = std::getenv(name);
        if (value != nullptr && *value != '\0') places.emplace_back(value);
    }
    places.insert(places.end(), {"/tmp", "/var/tmp", "/usr/tmp"});
    std::error_code no_cwd;
    const fs::path cwd = fs::current_path(no_cwd);
    if (!no_cwd) places.push_back(cwd);
    std::vector<std::string> absolute;
    for (const fs::path& place : places) {
        absolute.push_back((place.is_absolute() || no_cwd ? place : cwd / place).string());
    }
    return absolute;
}

}  // namespace vztrace::tracer
