// The HTTP server of `vztrace view`: a few files on 127.0.0.1 only, each under
// /<token>/, where the token is 128 random bits: another user of the machine can reach the
// port but cannot name a file, and anything else gets 404. Files are streamed from open
// descriptors in chunks (a trace of a gigabyte is never held in memory). Responses carry
// the CORS headers ui.perfetto.dev needs to fetch the trace. No Python.h.
#pragma once

#include <memory>
#include <string>

namespace vztrace::launcher {

// 128 bits from the kernel's random source, as 32 hex digits; empty if none could be read.
std::string random_token();

// The server lives in a module of its own (vztrace-view-server.so, beside the executable
// or in an install's lib/vztrace/), loaded only by `vztrace view`: cpp-httplib as Debian
// builds it brings OpenSSL and brotli, whose loading and initialisation cost every run of
// vztrace about 5 ms (a third of python's own start-up) if linked into the executable.
// The module has the system's libstdc++.so, the executable a C++ runtime of its own
// (launcher/CMakeLists.txt): strings cross by reference (both allocate with malloc), and
// the module catches what httplib may throw (its server runs in bind and run): no
// exception crosses.
class ViewServer {
 public:
    // The origin allowed to read the files from a page of its own (the Perfetto UI).
    static constexpr const char* kPerfettoOrigin = "https://ui.perfetto.dev";

    // A server for `token` from the module; null, with `error` set, if it cannot be loaded.
    static std::unique_ptr<ViewServer> load(const std::string& token, std::string& error);

    virtual ~ViewServer() = default;

    // Serves the open file `fd` (the server closes it) at /<token>/<path>.
    virtual void add_file(const std::string& path, int fd, std::string content_type) = 0;
    // Serves the regular files directly in `directory` at /<token>/<prefix>/<name>; false
    // (with `error`) if it cannot be read.
    virtual bool add_directory(const std::string& prefix, const std::string& directory,
                               std::string& error) = 0;

    // Listens on 127.0.0.1:`port` (0: a free port the kernel picks); the port, or -1 with
    // `error` set. Connections wait in the backlog until run().
    virtual int bind(int port, std::string& error) = 0;
    // Answers requests until stop(); false if the server failed.
    virtual bool run() = 0;
    // Ends run() and any download under way; safe from another thread.
    virtual void stop() = 0;
    // Whether run() has started listening: stop() before that would be lost (cpp-httplib
    // ignores a stop() that comes before its accept loop starts).
    virtual bool running() const = 0;

    virtual const std::string& token() const = 0;
};

}  // namespace vztrace::launcher

// The module's one entry point: a new server for `token` (the caller owns it).
extern "C" vztrace::launcher::ViewServer* vztrace_new_view_server(const char* token);
