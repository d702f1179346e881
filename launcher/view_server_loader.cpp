// What `vztrace view` needs of its server without loading it: the token, and the module.
#include <dlfcn.h>
#include <fmt/format.h>
#include <sys/random.h>

#include <cerrno>
#include <filesystem>

#include "launcher/view_server.hpp"

namespace vztrace::launcher {

std::string random_token() {
    unsigned char bytes[16];
    std::size_t got = 0;
    while (got < sizeof bytes) {
        const ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return {};
        got += static_cast<std::size_t>(n);
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string token;
    for (const unsigned char byte : bytes) {
        token += kHex[byte >> 4];
        token += kHex[byte & 0xF];
    }
    return token;
}

std::unique_ptr<ViewServer> ViewServer::load(const std::string& token, std::string& error) {
    constexpr const char* kModule = "vztrace-view-server.so";
    std::error_code failed;
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", failed);
    if (failed) {
        error = "cannot find vztrace's own directory: " + failed.message();
        return nullptr;
    }
    const std::filesystem::path candidates[] = {
        exe.parent_path() / kModule,
        exe.parent_path() / ".." / "lib" / "vztrace" / kModule,
    };
    for (const std::filesystem::path& candidate : candidates) {
        if (!std::filesystem::exists(candidate, failed)) continue;
        // Never unloaded: the server's code runs until vztrace exits.
        void* module = ::dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (module == nullptr) {
            error = fmt::format("cannot load {}: {}", candidate.string(), ::dlerror());
            return nullptr;
        }
        const auto make = reinterpret_cast<decltype(&vztrace_new_view_server)>(
            ::dlsym(module, "vztrace_new_view_server"));
        if (make == nullptr) {
            error = fmt::format("{} is not vztrace's view server", candidate.string());
            return nullptr;
        }
        return std::unique_ptr<ViewServer>(make(token.c_str()));
    }
    error =
        fmt::format("{} is missing beside {} (and from ../lib/vztrace/)", kModule, exe.string());
    return nullptr;
}

}  // namespace vztrace::launcher
