#include "embed/virtualenv.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
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

// `dir` as python makes its own executable's directory: absolute (from the working
// directory) and lexically normal, without a trailing slash. A relative venv went to
// CPython's path calculation as it was ("./env/bin/python3": it freed a pointer it had
// not allocated, and the process died), and to the children (another working directory).
std::string absolute_dir(const std::string& dir) {
    std::error_code error;
    std::filesystem::path path = std::filesystem::absolute(dir, error);
    if (error) path = dir;  // no working directory (removed): as given
    std::string normal = path.lexically_normal().string();
    while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
    return normal;
}

std::optional<Virtualenv> virtualenv_at(const std::string& given) {
    const std::string root = absolute_dir(given);
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
        // The first python on PATH decides: a venv's bin/ has pyvenv.cfg one level up
        // ("env/bin/" and "env/bin/." are its bin/ too).
        const std::string bin = absolute_dir(dir);
        const auto slash = bin.find_last_of('/');
        if (slash == std::string::npos || slash == 0) return std::nullopt;
        return virtualenv_at(bin.substr(0, slash));
    }
    return std::nullopt;
}

std::optional<Virtualenv> virtualenv_of_invoked(const std::string& invoked, const char* path) {
    std::string executable;
    if (invoked.find('/') != std::string::npos) {
        executable = invoked;
    } else if (path != nullptr && !invoked.empty()) {
        std::stringstream dirs(path);
        std::string dir;
        while (std::getline(dirs, dir, ':')) {
            if (dir.empty()) dir.push_back('.');  // GCC 12 -O3 misreads `dir = "."` (-Wrestrict)
            if (is_executable(dir + "/" + invoked)) {
                executable = dir + "/" + invoked;
                break;
            }
        }
    }
    if (executable.empty()) return std::nullopt;
    // Its directory as named, a link not followed: a link to vztrace in env/bin is env's.
    std::string dir = absolute_dir(executable);
    dir = dir.substr(0, dir.find_last_of('/'));
    if (auto venv = virtualenv_at(dir)) return venv;
    const auto slash = dir.find_last_of('/');
    if (slash == std::string::npos || slash == 0) return std::nullopt;
    return virtualenv_at(dir.substr(0, slash));
}

}  // namespace vztrace::embed
