// The HTTP server of `vztrace view`: a few files on 127.0.0.1 only, each under
// /<token>/, where the token is 128 random bits: another user of the machine can reach the
// port but cannot name a file, and anything else gets 404. Files are streamed from open
// descriptors in chunks (a trace of a gigabyte is never held in memory). Responses carry
// the CORS headers ui.perfetto.dev needs to fetch the trace. No Python.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace httplib {
class Server;
}

namespace vztrace::launcher {

// 128 bits from the kernel's random source, as 32 hex digits; empty if none could be read.
std::string random_token();

class ViewServer {
 public:
    // The origin allowed to read the files from a page of its own (the Perfetto UI).
    static constexpr const char* kPerfettoOrigin = "https://ui.perfetto.dev";

    explicit ViewServer(std::string token);
    ~ViewServer();
    ViewServer(const ViewServer&) = delete;
    ViewServer& operator=(const ViewServer&) = delete;

    // Serves the open file `fd` (the server closes it) at /<token>/<path>.
    void add_file(const std::string& path, int fd, std::string content_type);
    // Serves the regular files directly in `directory` at /<token>/<prefix>/<name>; false
    // (with `error`) if it cannot be read.
    bool add_directory(const std::string& prefix, const std::string& directory, std::string& error);

    // Listens on 127.0.0.1:`port` (0: a free port the kernel picks); the port, or -1 with
    // `error` set. Connections wait in the backlog until run().
    int bind(int port, std::string& error);
    // Answers requests until stop(); false if the server failed.
    bool run();
    // Ends run() and any download under way; safe from another thread.
    void stop();
    // Whether run() has started listening: stop() before that would be lost (cpp-httplib
    // ignores a stop() that comes before its accept loop starts).
    bool running() const;

    const std::string& token() const { return token_; }

 private:
    struct File {
        int fd = -1;
        std::uint64_t size = 0;
        std::string content_type;
    };
    void route();

    std::string token_;
    int port_ = 0;
    std::map<std::string, File> files_;  // by path under /<token>/
    std::atomic<bool> stopping_{false};
    std::unique_ptr<httplib::Server> server_;
};

}  // namespace vztrace::launcher
