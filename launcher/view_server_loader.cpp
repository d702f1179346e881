// What `vztrace view` needs of its server without loading it: the token, and the module.
#include <sys/random.h>

#include <cerrno>

#include "launcher/view_server.hpp"
#include "tracer/format/module_loader.hpp"

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
    const auto make = reinterpret_cast<decltype(&vztrace_new_view_server)>(
        format::module_symbol("vztrace-view-server.so", "vztrace_new_view_server", error));
    if (make == nullptr) return nullptr;
    std::unique_ptr<ViewServer> server(make(token.c_str()));
    if (server == nullptr) error = "cannot start view's server: out of memory";
    return server;
}

}  // namespace vztrace::launcher
