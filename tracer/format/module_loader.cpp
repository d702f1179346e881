#include "tracer/format/module_loader.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <filesystem>

namespace vztrace::format {

void* module_symbol(const char* module, const char* symbol, std::string& error) {
    std::error_code failed;
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", failed);
    if (failed) {
        error = "cannot find vztrace's own directory: " + failed.message();
        return nullptr;
    }
    const std::filesystem::path candidates[] = {
        exe.parent_path() / module,
        exe.parent_path() / ".." / "lib" / "vztrace" / module,
    };
    for (const std::filesystem::path& candidate : candidates) {
        if (!std::filesystem::exists(candidate, failed)) continue;
        // Never unloaded: the module's code may run until vztrace exits.
        void* handle = ::dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (handle == nullptr) {
            error = fmt::format("cannot load {}: {}", candidate.string(), ::dlerror());
            return nullptr;
        }
        void* found = ::dlsym(handle, symbol);
        if (found == nullptr) {
            error = fmt::format("{} is not vztrace's: it has no {}", candidate.string(), symbol);
        }
        return found;
    }
    error = fmt::format("{} is missing beside {} (and from ../lib/vztrace/)", module, exe.string());
    return nullptr;
}

}  // namespace vztrace::format
