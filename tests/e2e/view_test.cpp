// `vztrace view`: the server as a browser and another user of the machine see it (an HTTP
// client, /proc/net/tcp), and the offline viewer loaded by a real browser (Debian's
// chromium, headless).
#include <httplib.h>
#include <netinet/in.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "e2e/e2e.hpp"

using namespace vztrace::e2e;
using vztrace::testing::ProcessResult;
using vztrace::testing::RunningProcess;
using vztrace::testing::TempDir;

namespace {

constexpr const char* kServing = "vztrace: view: serving ";

// A trace of fib(5) in the format under test, and `vztrace view` serving it.
struct Viewing {
    TempDir dir;
    std::string trace;
    std::unique_ptr<RunningProcess> view;
    int port = 0;
    std::string token;
    std::string trace_url;       // the file itself
    std::string speedscope_url;  // the offline viewer, when served
    std::string perfetto_url;

    explicit Viewing(std::vector<std::string> options = {},
                     const std::string& program = script("fib5.py"),
                     const vztrace::testing::RunOptions& run_options = {}) {
        trace = dir.file(vztrace::testing::trace_name("fib"));
        const auto traced = run_vztrace({"--quiet", "-o", trace, program});
        REQUIRE(traced.status() == 0);
        // --port 0: a free port even for the Perfetto viewer (9001 would be shared by the
        // tests running at once).
        std::vector<std::string> argv = {kVztrace, "view", trace, "--no-browser", "--port", "0"};
        argv.insert(argv.end(), options.begin(), options.end());
        view = std::make_unique<RunningProcess>(argv, run_options);
        const bool serving = view->wait_for_stderr(kServing);
        INFO(view->so_far().err);
        REQUIRE(serving);
        const std::string& err = view->so_far().err;
        std::smatch found;
        REQUIRE(std::regex_search(err, found,
                                  std::regex("the trace itself: (http://127\\.0\\.0\\.1:(\\d+)/"
                                             "([0-9a-f]+)/trace/[^\\s]+)\n")));
        trace_url = found[1];
        port = std::stoi(found[2]);
        token = found[3];
        if (std::regex_search(err, found, std::regex("speedscope \\(offline\\): (\\S+)\n")))
            speedscope_url = found[1];
        if (std::regex_search(err, found, std::regex("(https://ui\\.perfetto\\.dev/\\S+)")))
            perfetto_url = found[1];
    }
    // The path of an address of this server.
    std::string path_of(const std::string& url) const {
        return url.substr(std::string("http://127.0.0.1:").size() + std::to_string(port).size());
    }
    httplib::Client client() const {
        httplib::Client client("127.0.0.1", port);
        client.set_decompress(false);
        return client;
    }
};

std::string file_bytes(const std::string& path) { return vztrace::testing::read_file(path); }

vztrace::testing::RunOptions within(int seconds) {
    vztrace::testing::RunOptions options;
    options.timeout_seconds = seconds;
    return options;
}

// The addresses listening on `port` in /proc/net/tcp{,6} (hex, as the kernel writes them).
std::vector<std::string> listening_addresses(int port) {
    std::vector<std::string> addresses;
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(table);
        std::string line;
        std::getline(in, line);  // the heading
        while (std::getline(in, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, state;
            fields >> slot >> local >> remote >> state;
            const auto colon = local.rfind(':');
            if (state == "0A" && std::stoi(local.substr(colon + 1), nullptr, 16) == port)
                addresses.push_back(local.substr(0, colon));
        }
    }
    return addresses;
}

std::string find_chromium() {
    for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
        const auto found =
            vztrace::testing::run_process({"sh", "-c", std::string("command -v ") + name});
        if (found.status() == 0 && !found.out.empty())
            return found.out.substr(0, found.out.find('\n'));
    }
    return "";
}

}  // namespace

TEST_CASE("view serves the trace's own bytes under its token and nothing without it") {
    Viewing viewing;
    auto client = viewing.client();
    const auto served = client.Get(viewing.path_of(viewing.trace_url));
    REQUIRE(served);
    CHECK(served->status == 200);
    CHECK(served->body == file_bytes(viewing.trace));

    const std::string wrong = std::string(viewing.token.size(), '0');
    const std::string rest = viewing.path_of(viewing.trace_url).substr(viewing.token.size() + 1);
    for (const std::string& path :
         {"/" + wrong + rest, rest, std::string("/"), "/" + viewing.token,
          "/" + viewing.token + "/", "/" + viewing.token + "/trace/../trace.speedscope.json",
          "/" + viewing.token.substr(1) + rest}) {
        INFO(path);
        const auto refused = client.Get(path);
        REQUIRE(refused);
        CHECK(refused->status == 404);
        CHECK(refused->body.find("fib") == std::string::npos);
    }
    // A page of another site whose name points at 127.0.0.1 (DNS rebinding) is refused.
    const auto rebound = client.Get(viewing.path_of(viewing.trace_url),
                                    {{"Host", "attacker.example:" + std::to_string(viewing.port)}});
    REQUIRE(rebound);
    CHECK(rebound->status == 404);

    const ProcessResult stopped = viewing.view->stop(SIGINT);
    INFO(stopped.err);
    CHECK(stopped.status() == 0);
    CHECK(stopped.out.empty());
}

TEST_CASE("view answers ui.perfetto.dev's CORS preflight and requests") {
    Viewing viewing;
    auto client = viewing.client();
    const std::string path = viewing.path_of(viewing.trace_url);
    const auto preflight =
        client.Options(path, {{"Origin", "https://ui.perfetto.dev"},
                              {"Access-Control-Request-Method", "GET"},
                              {"Access-Control-Request-Private-Network", "true"}});
    REQUIRE(preflight);
    CHECK(preflight->status == 204);
    CHECK(preflight->get_header_value("Access-Control-Allow-Origin") == "https://ui.perfetto.dev");
    CHECK(preflight->get_header_value("Access-Control-Allow-Methods").find("GET") !=
          std::string::npos);
    CHECK(preflight->get_header_value("Access-Control-Allow-Private-Network") == "true");

    const auto fetched = client.Get(path, {{"Origin", "https://ui.perfetto.dev"}});
    REQUIRE(fetched);
    CHECK(fetched->status == 200);
    CHECK(fetched->get_header_value("Access-Control-Allow-Origin") == "https://ui.perfetto.dev");

    // Without the token, no CORS answer either.
    const auto refused = client.Options("/" + std::string(32, 'a') + "/trace/x",
                                        {{"Origin", "https://ui.perfetto.dev"}});
    REQUIRE(refused);
    CHECK(refused->status == 404);
    CHECK(!refused->has_header("Access-Control-Allow-Origin"));
    CHECK(viewing.view->stop(SIGTERM).status() == 0);
}

TEST_CASE("view listens on 127.0.0.1 alone") {
    Viewing viewing;
    CHECK(listening_addresses(viewing.port) == std::vector<std::string>{"0100007F"});
    // Another loopback address of the machine reaches nothing.
    httplib::Client other("127.0.0.2", viewing.port);
    other.set_connection_timeout(5);
    CHECK(!other.Get(viewing.path_of(viewing.trace_url)));
    CHECK(viewing.view->stop(SIGINT).status() == 0);
}

TEST_CASE("view serves speedscope and the trace as speedscope's JSON, with its functions") {
    Viewing viewing({"--viewer", "speedscope"});
    INFO("the offline viewer is fetched by the build with npm: " << viewing.view->so_far().err);
    REQUIRE(!viewing.speedscope_url.empty());
    auto client = viewing.client();
    const std::string page = viewing.path_of(viewing.speedscope_url);
    const auto index = client.Get(page.substr(0, page.find('#')));
    REQUIRE(index);
    CHECK(index->status == 200);
    CHECK(index->get_header_value("Content-Type").starts_with("text/html"));
    CHECK(index->body.find("<title>speedscope</title>") != std::string::npos);

    // The profile the page is told to load (#profileURL=, URL-encoded).
    const std::string profile_url = "http%3A%2F%2F127.0.0.1%3A" + std::to_string(viewing.port) +
                                    "%2F" + viewing.token + "%2Ftrace.speedscope.json";
    CHECK(page.find("#profileURL=" + profile_url) != std::string::npos);
    // speedscope gives a `title=` to every profile in place of each thread's own name.
    CHECK(page.find("title=") == std::string::npos);
    const auto profile = client.Get("/" + viewing.token + "/trace.speedscope.json");
    REQUIRE(profile);
    REQUIRE(profile->status == 200);
    simdjson::dom::parser parser;
    const simdjson::dom::element json = parser.parse(profile->body);
    std::size_t fib_frames = 0;
    for (const simdjson::dom::element frame : json["shared"]["frames"].get_array()) {
        if (std::string_view(frame["name"].get_string()).starts_with("fib (")) ++fib_frames;
    }
    CHECK(fib_frames == 1);
    CHECK(json["profiles"].get_array().size() >= 1);
    CHECK(viewing.view->stop(SIGINT).status() == 0);
}

TEST_CASE("view --viewer perfetto names the trace in a ui.perfetto.dev address") {
    Viewing viewing({"--viewer", "perfetto"});
    // Only 127.0.0.1:9001 is fetched by the UI: on another port vztrace says so.
    CHECK(viewing.view->so_far().err.find("vztrace: warning: ui.perfetto.dev reads traces from "
                                          "127.0.0.1:9001 only") != std::string::npos);
    CHECK(viewing.perfetto_url == "https://ui.perfetto.dev/#!/?url=" + viewing.trace_url);
    CHECK(viewing.speedscope_url.empty());
    CHECK(viewing.view->stop(SIGINT).status() == 0);
}

TEST_CASE("view stops on a signal sent the moment it says it is serving") {
    // cpp-httplib drops a stop() that comes before its accept loop runs; view said
    // "serving" before that and then never stopped. Seen in 2 of about 8 runs of the test
    // above (a SIGINT at once); 20 rounds here catch it at that rate.
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("fib"));
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("fib5.py")}).status() == 0);
    for (int round = 0; round < 20; ++round) {
        RunningProcess view({kVztrace, "view", trace, "--no-browser", "--port", "0", "--viewer",
                             round % 2 == 0 ? "perfetto" : "speedscope"});
        REQUIRE(view.wait_for_stderr(kServing));
        INFO("round " << round);
        CHECK(view.stop(round % 3 == 0 ? SIGTERM : SIGINT).status() == 0);
    }
}

TEST_CASE("view --viewer perfetto says so when port 9001 is taken") {
    // Holds 9001 (or finds it held by another: the same for vztrace).
    const int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(9001);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool held = bind(holder, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                      listen(holder, 1) == 0;
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("fib"));
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("fib5.py")}).status() == 0);
    const auto result = run_vztrace({"view", trace, "--no-browser", "--viewer", "perfetto"});
    close(holder);
    INFO(result.err << "held by this test: " << held);
    CHECK(result.status() == 2);
    CHECK(result.err.find("vztrace: error: view: cannot listen on 127.0.0.1:9001") == 0);
    CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
    CHECK(result.err.find(kServing) == std::string::npos);
}

TEST_CASE("view will not share its port with another view") {
    // Both listened (cpp-httplib's SO_REUSEPORT), and the kernel split the connections
    // between them: the first one's addresses answered 404 about half the time.
    Viewing first;
    const auto second = run_vztrace(
        {"view", first.trace, "--no-browser", "--port", std::to_string(first.port)}, within(30));
    INFO(second.err);
    CHECK(second.status() == 2);
    CHECK(second.err.find("vztrace: error: view: cannot listen on 127.0.0.1:" +
                          std::to_string(first.port)) == 0);
    CHECK(std::count(second.err.begin(), second.err.end(), '\n') == 1);
    CHECK(listening_addresses(first.port).size() == 1);
}

TEST_CASE(
    "view answers a range of the trace with it, one past its end with the rest, and one "
    "after it with 416") {
    // It answered 200 with a Content-Range, and a range past the end with a length of
    // 18446744073708669459. Then a range that ran past the end (a client reading in fixed
    // pieces) or a suffix longer than the file got 416, where RFC 9110 gives the bytes up
    // to the end (found by hunt AH).
    Viewing viewing;
    const std::string bytes = file_bytes(viewing.trace);
    REQUIRE(bytes.size() > 100);
    const std::string size = std::to_string(bytes.size());
    auto client = viewing.client();
    const std::string path = viewing.path_of(viewing.trace_url);
    const auto first = client.Get(path, {{"Range", "bytes=0-9"}});
    REQUIRE(first);
    CHECK(first->status == 206);
    CHECK(first->body == bytes.substr(0, 10));
    CHECK(first->get_header_value("Content-Range") == "bytes 0-9/" + size);
    const auto tail = client.Get(path, {{"Range", "bytes=-5"}});
    REQUIRE(tail);
    CHECK(tail->status == 206);
    CHECK(tail->body == bytes.substr(bytes.size() - 5));
    const auto whole = client.Get(path);
    REQUIRE(whole);
    CHECK(whole->status == 200);
    CHECK(whole->body == bytes);
    const std::string last = std::to_string(bytes.size() - 1);
    for (const auto& [past_end, from] :
         {std::pair<std::string, std::size_t>{"bytes=0-999999999", 0},
          {"bytes=10-999999999", 10},
          {"bytes=-999999999", 0}}) {
        INFO(past_end);
        const auto rest = client.Get(path, {{"Range", past_end}});
        REQUIRE(rest);
        CHECK(rest->status == 206);
        CHECK(rest->body == bytes.substr(from));
        CHECK(rest->get_header_value("Content-Range") ==
              "bytes " + std::to_string(from) + "-" + last + "/" + size);
    }
    for (const std::string& outside :
         std::vector<std::string>{"bytes=999999999-", "bytes=" + size + "-", "bytes=-0"}) {
        INFO(outside);
        const auto refused = client.Get(path, {{"Range", outside}});
        REQUIRE(refused);
        CHECK(refused->status == 416);
        CHECK(refused->get_header_value("Content-Range") == "bytes */" + size);
    }
}

TEST_CASE("view ends on Ctrl-C while a client sends its request a byte at a time") {
    // cpp-httplib's stop() closed the listening socket alone: a worker reading a request
    // went on for as long as its client sent a byte within each 5 s read timeout, and view
    // ran on after Ctrl-C (40 s and more); a SIGTERM that came after the SIGINT then ended
    // it by the signal (143) once the signals were let through again (found by hunt AH).
    Viewing viewing;
    const int connection = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(viewing.port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(connection, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    const std::string start = "GET " + viewing.path_of(viewing.trace_url) +
                              " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(viewing.port) +
                              "\r\nX-Slow: ";
    REQUIRE(send(connection, start.data(), start.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(start.size()));
    std::atomic<bool> ended{false};
    std::thread slow_client([&] {
        // A byte every 100 ms (each well within the read timeout) until view has ended or
        // 40 s have gone: the client's pace, not a wait for something to happen.
        for (int sent = 0; sent < 400 && !ended; ++sent) {
            if (send(connection, "a", 1, MSG_NOSIGNAL) != 1) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    });
    REQUIRE(viewing.view->pid() > 0);
    kill(viewing.view->pid(), SIGINT);
    kill(viewing.view->pid(), SIGTERM);
    const ProcessResult stopped = viewing.view->stop(0, 20);
    ended = true;
    slow_client.join();
    close(connection);
    INFO(stopped.err);
    CHECK_FALSE(stopped.timed_out);
    CHECK(stopped.status() == 0);
    CHECK(stopped.out.empty());
}

TEST_CASE("view answers several ranges at once with the whole trace") {
    // cpp-httplib's multipart answer gave each part a total size of 0 ("bytes 0-3/0").
    Viewing viewing;
    const std::string bytes = file_bytes(viewing.trace);
    auto client = viewing.client();
    const auto several =
        client.Get(viewing.path_of(viewing.trace_url), {{"Range", "bytes=0-3,10-13"}});
    REQUIRE(several);
    CHECK(several->status == 200);
    CHECK(several->body == bytes);
}

TEST_CASE("view makes speedscope's file where python's tempfile would when TMPDIR is missing") {
    // std::filesystem::temp_directory_path threw: view died of SIGABRT (134).
    vztrace::testing::RunOptions options;
    options.env["TMPDIR"] = "/nonexistent/vztrace-test";
    Viewing viewing({"--viewer", "speedscope"}, script("fib5.py"), options);
    auto client = viewing.client();
    const auto profile = client.Get("/" + viewing.token + "/trace.speedscope.json");
    REQUIRE(profile);
    CHECK(profile->status == 200);
    CHECK(profile->body.find("\"fib (") != std::string::npos);
    CHECK(viewing.view->stop(SIGINT).status() == 0);
}

TEST_CASE("view on port 80 serves a browser that leaves the port out of Host") {
    // Browsers send "Host: 127.0.0.1" for port 80; only "127.0.0.1:80" was served (404).
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("fib"));
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("fib5.py")}).status() == 0);
    RunningProcess view({kVztrace, "view", trace, "--no-browser", "--port", "80"});
    INFO("needs port 80 free and the right to bind it (CI runs as root)");
    REQUIRE(view.wait_for_stderr(kServing));
    std::smatch found;
    const std::string err = view.so_far().err;
    REQUIRE(
        std::regex_search(err, found, std::regex("http://127\\.0\\.0\\.1:80(/\\S+/trace/\\S+)\n")));
    httplib::Client client("127.0.0.1", 80);
    for (const std::string host : {"127.0.0.1", "localhost", "127.0.0.1:80"}) {
        INFO(host);
        const auto served = client.Get(found[1].str(), {{"Host", host}});
        REQUIRE(served);
        CHECK(served->status == 200);
    }
    const auto other = client.Get(found[1].str(), {{"Host", "example.com"}});
    REQUIRE(other);
    CHECK(other->status == 404);
    CHECK(view.stop(SIGINT).status() == 0);
}

TEST_CASE("view reaps the browser it starts and says when it failed") {
    // The browser's process stayed a zombie while view served, its failure unsaid.
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("fib"));
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("fib5.py")}).status() == 0);
    dir.write("browser.sh", "#!/bin/sh\nprintf '%s' \"$1\" > \"$0.url\"\nexit 3\n");
    std::filesystem::permissions(dir.file("browser.sh"), std::filesystem::perms::owner_all);
    vztrace::testing::RunOptions options;
    options.env["BROWSER"] = dir.file("browser.sh");
    RunningProcess view({kVztrace, "view", trace, "--port", "0"}, options);
    const std::string failed = "vztrace: view: the browser (" + dir.file("browser.sh") +
                               ") exited with status 3: open the address above\n";
    CHECK(view.wait_for_stderr(failed));
    const ProcessResult stopped = view.stop(SIGINT);
    CHECK(stopped.status() == 0);
    CHECK(stopped.out.empty());
    std::smatch found;
    REQUIRE(
        std::regex_search(stopped.err, found, std::regex("speedscope \\(offline\\): (\\S+)\n")));
    CHECK(file_bytes(dir.file("browser.sh.url")) == found[1].str());
}

TEST_CASE("view reads $BROWSER as a list of commands with arguments and %s") {
    // Everything before the first ':' was taken for a program's file name: a list
    // ("firefox:chromium"), arguments or %s never started a browser; and the browser got
    // SIGPIPE ignored, as view has it, where a program started from a shell has it by
    // default (found by hunt AH).
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("fib"));
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("fib5.py")}).status() == 0);
    dir.write("browser.sh",
              "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$0.args\"\n"
              "grep '^SigIgn:' /proc/$$/status > \"$0.ignored\"\nexit 3\n");
    std::filesystem::permissions(dir.file("browser.sh"), std::filesystem::perms::owner_all);
    vztrace::testing::RunOptions options;
    options.env["BROWSER"] =
        "vztrace-test-no-such-browser:" + dir.file("browser.sh") + " --new-window %s --from-view";
    RunningProcess view({kVztrace, "view", trace, "--port", "0"}, options);
    CHECK(view.wait_for_stderr("vztrace: view: the browser (" + dir.file("browser.sh") +
                               ") exited with status 3"));
    const ProcessResult stopped = view.stop(SIGINT);
    CHECK(stopped.status() == 0);
    std::smatch found;
    REQUIRE(
        std::regex_search(stopped.err, found, std::regex("speedscope \\(offline\\): (\\S+)\n")));
    CHECK(file_bytes(dir.file("browser.sh.args")) ==
          "--new-window\n" + found[1].str() + "\n--from-view\n");
    // SigIgn: a hex mask of the ignored signals; SIGPIPE is 13, bit 12.
    const std::string ignored = file_bytes(dir.file("browser.sh.ignored"));
    REQUIRE(ignored.size() > 8);
    CHECK((std::stoull(ignored.substr(7), nullptr, 16) & (1ULL << (SIGPIPE - 1))) == 0);

    // None of them starts: each is named with its reason, in one line.
    options.env["BROWSER"] = "vztrace-test-no-such-a:vztrace-test-no-such-b %s";
    RunningProcess unopened({kVztrace, "view", trace, "--port", "0"}, options);
    CHECK(unopened.wait_for_stderr(
        "vztrace: view: cannot start a browser (vztrace-test-no-such-a: No such file or "
        "directory; vztrace-test-no-such-b: No such file or directory): open the address "
        "above\n"));
    CHECK(unopened.stop(SIGINT).status() == 0);
}

TEST_CASE("view quotes the trace's path in the command it suggests") {
    // A name with a space and a ';' was pasted into a shell as it was.
    TempDir dir;
    const std::string trace = dir.file("my trace;x.pftrace");
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("fib5.py")}).status() == 0);
    RunningProcess view({kVztrace, "view", trace, "--no-browser", "--port", "0"});
    REQUIRE(view.wait_for_stderr(kServing));
    CHECK(contains(view.so_far().err, "`vztrace view --viewer perfetto '" + trace + "'`"));
    CHECK(view.stop(SIGINT).status() == 0);
}

TEST_CASE("view quotes a path with a newline as bash reads it back") {
    // The quoted path was escaped for stderr after it was quoted: '.../a\nb.pftrace' names a
    // backslash and an n in a shell, not the newline (found by hunt AH).
    TempDir dir;
    const std::string trace = dir.file("a\nb'c.pftrace");
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("fib5.py")}).status() == 0);
    RunningProcess view({kVztrace, "view", trace, "--no-browser", "--port", "0"});
    REQUIRE(view.wait_for_stderr(kServing));
    const ProcessResult stopped = view.stop(SIGINT);
    CHECK(stopped.status() == 0);
    std::smatch found;
    REQUIRE(std::regex_search(stopped.err, found,
                              std::regex("`vztrace view --viewer perfetto ([^`\n]+)`")));
    const std::string quoted = found[1];
    CHECK(quoted.find("\\x0a") != std::string::npos);
    const ProcessResult read_back =
        vztrace::testing::run_process({"bash", "-c", "printf %s " + quoted});
    CHECK(read_back.out == trace);
}

TEST_CASE("view of a missing or damaged trace says so in one line and serves nothing") {
    TempDir dir;
    dir.write("damaged.json", "{\"traceEvents\": [{\"ph\": \"X\", ");
    dir.write("damaged.pftrace", "not a trace, whatever its name says\n");
    const std::pair<std::string, int> cases[] = {
        {"missing.pftrace", 66},
        {"damaged.json", 65},
        {"damaged.pftrace", 65},
    };
    for (const auto& [trace, status] : cases) {
        DYNAMIC_SECTION(trace) {
            const auto result = run_vztrace({"view", dir.file(trace), "--no-browser"}, within(30));
            INFO(result.err);
            CHECK(result.status() == status);
            CHECK(result.err.starts_with("vztrace: error: "));
            CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
            CHECK(result.out.empty());
        }
    }
}

TEST_CASE("view --viewer speedscope explains a missing offline viewer") {
    TempDir dir;
    const std::string trace = dir.file(vztrace::testing::trace_name("fib"));
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("fib5.py")}).status() == 0);
    vztrace::testing::RunOptions options = within(30);
    options.env["VZTRACE_SPEEDSCOPE_DIR"] = dir.path();
    const auto result =
        run_vztrace({"view", trace, "--no-browser", "--viewer", "speedscope"}, options);
    INFO(result.err);
    CHECK(result.status() == 2);
    CHECK(result.err.find("VZTRACE_SPEEDSCOPE_DIR has no index.html") != std::string::npos);
    CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
}

TEST_CASE("view without its server module says so in one line") {
    TempDir dir;
    const std::string copy = lone_copy(dir);
    const std::string trace = dir.file(vztrace::testing::trace_name("fib"));
    REQUIRE(run_vztrace({"--quiet", "-o", trace, script("fib5.py")}).status() == 0);
    const auto result = vztrace::testing::run_process(
        {copy, "view", trace, "--no-browser", "--viewer", "perfetto", "--port", "0"}, within(30));
    INFO(result.err);
    CHECK(result.status() == 2);
    CHECK(contains(result.err, "vztrace-view-server.so is missing"));
    CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
    CHECK(result.out.empty());
}

TEST_CASE("chromium loads the offline viewer from view and shows the trace's functions",
          "[browser]") {
    const std::string chromium = find_chromium();
    INFO("the browser test needs Debian's chromium (.ci/install-deps installs it)");
    REQUIRE(!chromium.empty());
    // A function that takes most of the program's time: the first row by self time.
    TempDir program;
    program.write("busy.py",
                  "def busy_for_the_viewer():\n"
                  "    for _ in range(2_000_000):\n"
                  "        pass\n"
                  "\n"
                  "busy_for_the_viewer()\n");
    Viewing viewing({"--viewer", "speedscope"}, program.file("busy.py"));
    INFO(viewing.view->so_far().err);
    REQUIRE(!viewing.speedscope_url.empty());
    TempDir profile;
    // speedscope draws its flame charts on a canvas; its sandwich view lists the functions
    // by self time as a table in the DOM (the rows that fit the window), and it names the
    // page after the profile once it has loaded it (`view=` and `title=` are its own hash
    // parameters).
    // The table is drawn after the profile loads; a headless dump under load once came
    // before it (1 run in 6, the title already set): up to three page loads, each a whole
    // load of the viewer from `vztrace view`.
    const std::string row = "</span>busy_for_the_viewer (" + program.file("busy.py") + ":1)</td>";
    vztrace::testing::ProcessResult shown;
    for (int attempt = 0; attempt < 3; ++attempt) {
        shown = vztrace::testing::run_process(
            {chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--user-data-dir=" + profile.path(), "--window-size=1280,2000",
             "--virtual-time-budget=10000", "--dump-dom",
             viewing.speedscope_url + "&view=sandwich"},
            within(60));
        if (shown.status() != 0 || shown.out.find(row) != std::string::npos) break;
    }
    INFO(shown.err);
    REQUIRE(shown.status() == 0);
    const std::string name = std::filesystem::path(viewing.trace).filename().string();
    CHECK(shown.out.find("<title>" + name + " - speedscope</title>") != std::string::npos);
    // The profile is the thread's, by its name (a `title=` in the address renamed it).
    CHECK(contains(shown.out, "busy.py (pid "));
    CHECK(contains(shown.out, ", thread MainThread"));
    CHECK(shown.out.find(row) != std::string::npos);
    CHECK(viewing.view->stop(SIGINT).status() == 0);
}
