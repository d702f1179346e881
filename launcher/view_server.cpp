#include "launcher/view_server.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string_view>
#include <vector>

namespace vztrace::launcher {
namespace {

// Bytes a download is read and sent in: large enough for the socket, small enough that
// a trace of any size costs no memory.
constexpr std::size_t kChunk = 256 * 1024;

std::string_view content_type_of(std::string_view name) {
    static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".wasm", "application/wasm"},
        {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
        {".md", "text/plain; charset=utf-8"},
    };
    for (const auto& [extension, type] : kTypes) {
        if (name.ends_with(extension)) return type;
    }
    return "application/octet-stream";
}

// The same answer whatever the first wrong character: a token is not found by timing.
bool same_token(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    unsigned char differ = 0;
    for (std::size_t i = 0; i < a.size(); ++i) differ |= static_cast<unsigned char>(a[i] ^ b[i]);
    return differ == 0;
}

// Shuts down every connection of this process made through `port` on 127.0.0.1: the
// server's own, since vztrace view makes no other. cpp-httplib's stop() closes the
// listening socket alone, and each of its workers went on reading a request or sending a
// download for as long as its client kept it going (a header sent a byte a second kept
// view running after Ctrl-C until the client chose to stop). A worker's read or write on a
// socket shut down fails at once, and it ends. A number closed and reused meanwhile can
// only be another connection of the server's, or not a socket (shutdown then fails).
void shut_down_connections(int port) {
    DIR* fds = ::opendir("/proc/self/fd");
    if (fds == nullptr) return;
    const int own = ::dirfd(fds);
    while (const dirent* entry = ::readdir(fds)) {
        char* end = nullptr;
        const long fd = std::strtol(entry->d_name, &end, 10);
        if (end == entry->d_name || *end != 0 || fd == own) continue;
        struct stat status {};
        if (::fstat(static_cast<int>(fd), &status) != 0 || !S_ISSOCK(status.st_mode)) continue;
        sockaddr_in local{};
        socklen_t length = sizeof local;
        if (::getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &length) !=
                0 ||
            length != sizeof local || local.sin_family != AF_INET ||
            ntohs(local.sin_port) != port) {
            continue;
        }
        ::shutdown(static_cast<int>(fd), SHUT_RDWR);
    }
    ::closedir(fds);
}

}  // namespace

// The server, on cpp-httplib.
class HttpViewServer final : public ViewServer {
 public:
    explicit HttpViewServer(std::string token);
    ~HttpViewServer() override;
    HttpViewServer(const HttpViewServer&) = delete;
    HttpViewServer& operator=(const HttpViewServer&) = delete;

    void add_file(const std::string& path, int fd, std::string content_type) override;
    bool add_directory(const std::string& prefix, const std::string& directory,
                       std::string& error) override;
    int bind(int port, std::string& error) override;
    bool run() override;
    void stop() override;
    bool running() const override;
    const std::string& token() const override { return token_; }

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

HttpViewServer::HttpViewServer(std::string token)
    : token_(std::move(token)), server_(std::make_unique<httplib::Server>()) {
    // A browser keeps connections open: a short keep-alive lets stop() end soon after
    // Ctrl-C.
    server_->set_keep_alive_timeout(1);
    // SO_REUSEADDR alone: cpp-httplib's default, SO_REUSEPORT, would let a second server
    // (another view) listen on the same port and take half of this one's connections.
    server_->set_socket_options([](socket_t socket) {
        const int yes = 1;
        ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    route();
}

HttpViewServer::~HttpViewServer() {
    stop();
    for (auto& [path, file] : files_) ::close(file.fd);
}

void HttpViewServer::add_file(const std::string& path, int fd, std::string content_type) {
    struct stat status {};
    const std::uint64_t size =
        ::fstat(fd, &status) == 0 ? static_cast<std::uint64_t>(status.st_size) : 0;
    files_[path] = File{fd, size, std::move(content_type)};
}

bool HttpViewServer::add_directory(const std::string& prefix, const std::string& directory,
                                   std::string& error) {
    std::error_code failed;
    for (const auto& entry : std::filesystem::directory_iterator(directory, failed)) {
        if (!entry.is_regular_file()) continue;
        const std::string name = entry.path().filename().string();
        const int fd = ::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            error = entry.path().string() + ": " + std::strerror(errno);
            return false;
        }
        add_file(prefix + "/" + name, fd, std::string(content_type_of(name)));
    }
    if (failed) error = directory + ": " + failed.message();
    return !failed;
}

int HttpViewServer::bind(int port, std::string& error) {
    errno = 0;
    try {  // nothing unwinds into the executable (view_server.hpp)
        if (port == 0) {
            port_ = server_->bind_to_any_port("127.0.0.1");
        } else {
            port_ = server_->bind_to_port("127.0.0.1", port) ? port : -1;
        }
    } catch (...) {
        port_ = -1;
    }
    if (port_ <= 0) {
        error = errno != 0 ? std::strerror(errno) : "cannot listen";
        return -1;
    }
    return port_;
}

bool HttpViewServer::run() {
    try {  // nothing unwinds into the executable (view_server.hpp)
        return server_->listen_after_bind() || stopping_;
    } catch (...) {
        return false;
    }
}

bool HttpViewServer::running() const { return server_->is_running(); }

void HttpViewServer::stop() {
    stopping_ = true;
    server_->stop();
    if (port_ > 0) shut_down_connections(port_);
}

void HttpViewServer::route() {
    using httplib::Request;
    using httplib::Response;
    server_->set_pre_routing_handler([this](const Request& request, Response& response) {
        response.status = 404;
        // Only this machine's own names: a page of another site whose name was made to
        // point at 127.0.0.1 (DNS rebinding) sends its own Host.
        const std::string host = request.get_header_value("Host");
        // Appended: GCC 12 -O3 misreads `":" + std::to_string(port_)` (-Wrestrict).
        std::string port(1, ':');
        port += std::to_string(port_);
        // A browser leaves out port 80, the scheme's own (--port 80).
        const bool named = host == "127.0.0.1" + port || host == "localhost" + port ||
                           (port_ == 80 && (host == "127.0.0.1" || host == "localhost"));
        if (!named) return httplib::Server::HandlerResponse::Handled;
        // /<token>/<path>
        const std::string_view path = request.path;
        if (path.size() < token_.size() + 2 || path[0] != '/' || path[token_.size() + 1] != '/' ||
            !same_token(path.substr(1, token_.size()), token_)) {
            return httplib::Server::HandlerResponse::Handled;
        }
        const auto file = files_.find(std::string(path.substr(token_.size() + 2)));
        if (file == files_.end()) return httplib::Server::HandlerResponse::Handled;
        // ui.perfetto.dev fetch()es the trace from its own origin: CORS lets it read the
        // answer. Chrome asks first (a preflight) before a public site reads from this
        // machine (Private Network Access).
        response.set_header("Access-Control-Allow-Origin", kPerfettoOrigin);
        response.set_header("Vary", "Origin");
        response.set_header("Cache-Control", "no-store");
        if (request.method == "OPTIONS") {
            response.status = 204;
            response.set_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
            const std::string asked = request.get_header_value("Access-Control-Request-Headers");
            if (!asked.empty()) response.set_header("Access-Control-Allow-Headers", asked);
            response.set_header("Access-Control-Allow-Private-Network", "true");
            response.set_header("Access-Control-Max-Age", "600");
            return httplib::Server::HandlerResponse::Handled;
        }
        if (request.method != "GET" && request.method != "HEAD") {
            response.status = 405;
            response.set_header("Allow", "GET, HEAD, OPTIONS");
            return httplib::Server::HandlerResponse::Handled;
        }
        // Several ranges at once: cpp-httplib's multipart answer gives each part a total
        // size of 0 with a content provider. A server may answer any Range with the whole
        // file (RFC 9110), and no viewer asks for several: the request is the handler's
        // own object (not const where it was made).
        if (request.ranges.size() > 1) const_cast<Request&>(request).ranges.clear();
        // Ranges: cpp-httplib cuts the answer to them, but takes any as given. One that
        // starts past the end of the file is refused (416), as RFC 9110 has it, before it
        // would make a length of garbage; one that ends past it, or a suffix longer than the
        // file, means the rest of the file (a client reading in fixed pieces asks so).
        const auto size = static_cast<std::int64_t>(file->second.size);
        for (auto& [first, last] : const_cast<Request&>(request).ranges) {
            const bool satisfiable = first < 0 ? last > 0 && size > 0 : first < size;
            if (!satisfiable) {
                response.status = 416;
                response.set_header("Content-Range", "bytes */" + std::to_string(size));
                return httplib::Server::HandlerResponse::Handled;
            }
            if (first < 0 && last > size) last = size;
            if (first >= 0 && last >= size) last = size - 1;
        }
        // Unset: cpp-httplib answers 200, or 206 when it cuts the answer to a range.
        response.status = -1;
        const int fd = file->second.fd;
        response.set_content_provider(
            file->second.size, file->second.content_type,
            [this, fd](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                if (stopping_) return false;
                std::vector<char> buffer(std::min(length, kChunk));
                const ssize_t n =
                    ::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(offset));
                if (n <= 0) return false;  // the file shrank, or cannot be read
                return sink.write(buffer.data(), static_cast<std::size_t>(n));
            });
        return httplib::Server::HandlerResponse::Handled;
    });
}

}  // namespace vztrace::launcher

extern "C" [[gnu::visibility("default")]] vztrace::launcher::ViewServer* vztrace_new_view_server(
    const char* token) {
    try {  // nothing unwinds into the executable, whose C++ runtime is its own
        return new vztrace::launcher::HttpViewServer(token);
    } catch (...) {
        return nullptr;
    }
}
