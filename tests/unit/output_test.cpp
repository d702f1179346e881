// Where trace bytes go: OutputFile, and the chunks records live in.
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "support/process.hpp"
#include "tracer/chunk_pool.hpp"
#include "tracer/clock.hpp"
#include "tracer/output_file.hpp"
#include "tracer/part_file.hpp"

using namespace vztrace::tracer;
using vztrace::testing::read_file;
using vztrace::testing::TempDir;

TEST_CASE("an existing file is replaced only by a complete trace") {
    TempDir dir;
    dir.write("t.pftrace", "precious");
    {
        OutputFile file(dir.file("t.pftrace"));
        REQUIRE(file.write("half a tra"));
        // destroyed without commit: a failed run
    }
    CHECK(read_file(dir.file("t.pftrace")) == "precious");
    CHECK(std::distance(std::filesystem::directory_iterator(dir.path()),
                        std::filesystem::directory_iterator()) == 1);
    OutputFile file(dir.file("t.pftrace"));
    REQUIRE(file.write("{}"));
    REQUIRE(file.commit());
    CHECK(read_file(dir.file("t.pftrace")) == "{}");
}

TEST_CASE("replacing a trace leaves other links to the old one and the file's mode as they were") {
    // The new trace takes the old one's place by an exchange and an unlink (not rename()
    // over it): what that must not change.
    TempDir dir;
    dir.write("t.pftrace", "old");
    std::filesystem::permissions(dir.file("t.pftrace"), std::filesystem::perms(0640));
    std::filesystem::create_hard_link(dir.file("t.pftrace"), dir.file("kept.pftrace"));
    OutputFile file(dir.file("t.pftrace"));
    REQUIRE(file.write("new"));
    REQUIRE(file.commit());
    CHECK(read_file(dir.file("t.pftrace")) == "new");
    CHECK(read_file(dir.file("kept.pftrace")) == "old");
    CHECK(std::filesystem::hard_link_count(dir.file("t.pftrace")) == 1);
    CHECK((std::filesystem::status(dir.file("t.pftrace")).permissions() &
           std::filesystem::perms::all) == std::filesystem::perms(0640));
    CHECK(std::distance(std::filesystem::directory_iterator(dir.path()),
                        std::filesystem::directory_iterator()) == 2);
}

TEST_CASE("a symbolic link at the output is replaced by the trace and its target kept") {
    TempDir dir;
    dir.write("target.pftrace", "old");
    std::filesystem::create_symlink(dir.file("target.pftrace"), dir.file("t.pftrace"));
    OutputFile file(dir.file("t.pftrace"));
    REQUIRE(file.write("new"));
    REQUIRE(file.commit());
    CHECK_FALSE(std::filesystem::is_symlink(dir.file("t.pftrace")));
    CHECK(read_file(dir.file("t.pftrace")) == "new");
    CHECK(read_file(dir.file("target.pftrace")) == "old");
}

TEST_CASE("a directory put at the output while the trace was written stays where it is") {
    TempDir dir;
    OutputFile file(dir.file("t.pftrace"));
    REQUIRE(file.write("new"));
    std::filesystem::create_directory(dir.file("t.pftrace"));
    dir.write("t.pftrace/inside", "mine");
    CHECK_FALSE(file.commit());
    CHECK(read_file(dir.file("t.pftrace/inside")) == "mine");
}

TEST_CASE("a stream written in place is there from its first byte and can be moved") {
    TempDir dir;
    OutputFile file(dir.file("part.pftrace"), OutputFile::Placement::kInPlace);
    REQUIRE(file.write("abc"));
    CHECK(std::filesystem::exists(dir.file("part.pftrace")));
    REQUIRE(file.commit_as(dir.file("moved.pftrace")));
    CHECK(read_file(dir.file("moved.pftrace")) == "abc");
    CHECK_FALSE(std::filesystem::exists(dir.file("part.pftrace")));
}

TEST_CASE("a stream moved for the next image is taken back when the exec fails") {
    TempDir dir;
    OutputFile file(dir.file("t.pftrace"));  // under a temporary name until committed
    file.reopen_for_each_write();
    REQUIRE(file.write("abc"));
    REQUIRE(file.write("end"));  // what the stream's end added
    REQUIRE(file.commit_as(dir.file("part.pftrace")));
    REQUIRE(file.reopen_at(3));
    CHECK_FALSE(std::filesystem::exists(dir.file("part.pftrace")));
    CHECK(file.bytes_written() == 3);
    REQUIRE(file.write("def"));
    REQUIRE(file.commit());
    CHECK(read_file(dir.file("t.pftrace")) == "abcdef");
}

TEST_CASE("a stream that cannot be taken back after an exec says so") {
    TempDir dir;
    OutputFile device("/dev/null");  // written in place, its descriptor held
    device.reopen_for_each_write();
    REQUIRE(device.write("abc"));
    REQUIRE(device.commit());
    CHECK_FALSE(device.reopen_at(0));
    OutputFile open(dir.file("t.pftrace"));
    open.reopen_for_each_write();
    REQUIRE(open.write("abc"));
    CHECK_FALSE(open.reopen_at(0));  // not committed: nothing to take back
}

TEST_CASE("write failures say which file and why") {
    TempDir dir;
    OutputFile missing(dir.file("no/such/dir/t.json"));
    CHECK_FALSE(missing.ok());
    CHECK(missing.error().find("No such file or directory") != std::string::npos);
    OutputFile full("/dev/full");
    REQUIRE(full.ok());
    CHECK_FALSE(full.write(std::string(1 << 16, 'x')));
    CHECK(full.error() == "cannot write '/dev/full': No space left on device");
}

TEST_CASE("a trace that fails under its temporary name gives its disk space back at once") {
    // A disk the trace filled (ENOSPC mid-run, the trace lost) stayed full until the end:
    // the program's own writes after it failed too, where python's had room. In a child,
    // whose file-size limit (the same EFBIG at a chosen size) is its own.
    TempDir dir;
    const std::string path = dir.file("t.pftrace");
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const rlimit limit{64 * 1024, RLIM_INFINITY};
        if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(4);
        OutputFile file(path);
        if (!file.ok() || file.write(std::string(256 * 1024, 'x'))) ::_exit(3);
        struct stat st {};
        if (::stat(file.temporary_path().c_str(), &st) != 0) ::_exit(5);
        ::_exit(st.st_size == 0 ? 0 : 2);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));  // SIGXFSZ is held back from vztrace's writes
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a .gz output is gzip that decompresses to what was written") {
    TempDir dir;
    OutputFile file(dir.file("t.json.gz"));
    REQUIRE(file.write("{\"traceEvents\":[]}"));
    REQUIRE(file.commit());
    gzFile gz = gzopen(dir.file("t.json.gz").c_str(), "rb");
    REQUIRE(gz != nullptr);
    std::string text;
    char buffer[4096];
    int n = 0;
    while ((n = gzread(gz, buffer, sizeof buffer)) > 0) text.append(buffer, n);
    gzclose(gz);
    CHECK(text == "{\"traceEvents\":[]}");
}

TEST_CASE("the chunk pool recycles chunks and stays within its limit while any are in flight") {
    ChunkPool pool(ChunkPool::kLargeRecords * sizeof(Record));  // one large chunk's worth
    Chunk* first = pool.take(ChunkPool::kLargeRecords);
    REQUIRE(first != nullptr);
    first->records[0] = Record{1, 2, vztrace::format::EventKind::kEnter};
    pool.handed_over();
    pool.give_back(first);
    Chunk* again = pool.take(ChunkPool::kLargeRecords);
    CHECK(again == first);  // the same memory, already populated
    CHECK(pool.mapped_bytes() == ChunkPool::kLargeRecords * sizeof(Record));
    CHECK_FALSE(pool.limit_reached());
    // Nothing in flight: the limit gives way rather than wait for good.
    Chunk* over = pool.take(ChunkPool::kSmallRecords);
    CHECK(over != nullptr);
    CHECK(pool.limit_reached());
}

TEST_CASE("memory the system refuses below the limit is not called the limit reached") {
    // In a child, whose address space may be limited to what it has: every new mapping
    // is refused. The pool's limit (1 GiB) is far away; the metadata said
    // memory_limit_reached, as if --max-memory had made the program wait.
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ChunkPool pool(std::uint64_t{1} << 30);
        const rlimit none{0, 0};
        if (::setrlimit(RLIMIT_AS, &none) != 0) ::_exit(4);
        const Chunk* chunk = pool.take(ChunkPool::kLargeRecords);
        ::_exit(chunk != nullptr ? 3 : pool.limit_reached() ? 2 : 0);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("tick mapping is linear between anchors") {
    const TickMapping mapping({1000, 5'000'000}, {3000, 5'001'000}, ClockSource::kTsc);
    CHECK(mapping.to_ns(1000) == 5'000'000);
    CHECK(mapping.to_ns(2000) == 5'000'500);
    CHECK(mapping.ns_per_tick() == Approx(0.5));
}

TEST_CASE("a child's summary carries its counts, and one without the newer fields reads as zero") {
    TempDir dir;
    ProcessSummary summary;
    summary.pid = 4242;
    summary.counts.calls = 17;
    summary.counts.overwritten = 3;
    summary.memory_limit_reached = true;
    summary.subinterpreters = 2;
    std::string error;
    REQUIRE(write_summary(dir.file("a.part"), summary, error));
    const auto back = read_summary(dir.file("a.part"), error);
    REQUIRE(back);
    CHECK(back->pid == 4242);
    CHECK(back->counts.calls == 17);
    CHECK(back->counts.overwritten == 3);
    CHECK(back->memory_limit_reached);
    CHECK(back->subinterpreters == 2);
    // As a child of an earlier build of this version wrote it (same magic, fewer keys).
    dir.write("old.part", "VZTRACE-PART-2\npid 7\ncalls 5\nend\n");
    const auto old = read_summary(dir.file("old.part"), error);
    REQUIRE(old);
    CHECK(old->counts.calls == 5);
    CHECK(old->subinterpreters == 0);
}
