#include "embed/virtualenv.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace vztrace::embed {
namespace {

bool is_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_executable(const std::string& path) {
    return is_file(path) && ::access(path.c_str(), X_OK) == 0;
}

std::string trim(const std::string& text) {
    const auto begin = text.find_first_not_of(" \t\r");
    if (begin == std::string::npos) return {};
    const auto end = text.find_last_not_of(" \t\r");
    return text.substr(begin, end - begin + 1);
}

std::optional<Virtualenv> virtualenv_at(const std::string& root) {
    const std::string cfg = root + "/pyvenv.cfg";
    if (!is_file(cfg)) return std::nullopt;
    for (const char* name : {"/bin/python3", "/bin/python"}) {
        if (is_executable(root + name)) {
            return Virtualenv{root, root + name, read_venv_version(cfg)};
        }
    }
    return std::nullopt;
}

}  // namespace

std::string read_venv_version(const std::string& pyvenv_cfg) {
    std::ifstream file(pyvenv_cfg);
    std::string line;
    std::string version;
    while (std::getline(file, line)) {
        const auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        const std::string key = trim(line.substr(0, eq));
        if (key != "version" && key != "version_info") continue;
        const std::string value = trim(line.substr(eq + 1));
        const auto first_dot = value.find('.');
        if (first_dot == std::string::npos) continue;
        const auto second_dot = value.find('.', first_dot + 1);
        version = value.substr(0, second_dot);
        if (key == "version") break;
    }
    return version;
}

std::optional<Virtualenv> find_virtualenv(const char* virtual_env, const char* path) {
    if (virtual_env != nullptr && *virtual_env != '\0') {
        if (auto venv = virtualenv_at(virtual_env)) return venv;
    }
    if (path == nullptr) return std::nullopt;
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        if (dir.empty()) continue;
        if (!is_executable(dir + "/python3") && !is_executable(dir + "/python")) continue;
        // The first python on PATH decides: a venv's bin/ has pyvenv.cfg one level up.
        const auto slash = dir.find_last_of('/');
        if (slash == std::string::npos || slash == 0) return std::nullopt;
        return virtualenv_at(dir.substr(0, slash));
    }
    return std::nullopt;
}

}  // namespace vztrace::embed
