#include "tracer/next_image.hpp"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/process.hpp"

using vztrace::tracer::next_image;
using vztrace::tracer::NextImage;

namespace {

namespace fs = std::filesystem;

// A directory with a stand-in for vztrace's executable (a copy of an ELF program, whose
// identity the tests give as `self`) and another program.
struct Place {
    vztrace::testing::TempDir dir;
    std::string bin = dir.file("bin");
    std::string vztrace = bin + "/vztrace";
    std::string other = bin + "/other";
    struct stat self {};
    Place() {
        fs::create_directory(bin);
        fs::copy_file("/bin/true", vztrace);
        fs::copy_file("/bin/true", other);
        ::stat(vztrace.c_str(), &self);
    }
    // An executable file holding `text`.
    std::string script(const std::string& name, const std::string& text,
                       fs::perms perms = fs::perms::owner_all) const {
        const std::string path = dir.file(name);
        std::ofstream(path, std::ios::binary) << text;
        fs::permissions(path, perms);
        return path;
    }
    NextImage of(const std::string& path, std::string search = "") const {
        std::string variable = "PATH=" + (search.empty() ? bin : search);
        char* const envp[] = {variable.data(), nullptr};
        return next_image(path.c_str(), self, envp);
    }
};

}  // namespace

TEST_CASE("next_image: an executable is vztrace's by its identity, through a link too") {
    Place place;
    CHECK(place.of(place.vztrace) == NextImage::kVztrace);
    const std::string link = place.dir.file("link");
    fs::create_symlink(place.vztrace, link);
    CHECK(place.of(link) == NextImage::kVztrace);
    CHECK(place.of(place.other) == NextImage::kAnotherProgram);
}

TEST_CASE("next_image: a script is its interpreter's, followed as the kernel does") {
    Place place;
    CHECK(place.of(place.script("a", "#!" + place.vztrace + "\nprint(1)\n")) ==
          NextImage::kVztrace);
    CHECK(place.of(place.script("b", "#! " + place.vztrace + " -u \n")) == NextImage::kVztrace);
    // A carriage return is part of the line the kernel reads: no such interpreter.
    CHECK(place.of(place.script("crlf", "#!" + place.other + "\r\n")) == NextImage::kUnknown);
    CHECK(place.of(place.script("c", "#!" + place.other + " -x\n")) == NextImage::kAnotherProgram);
    // An interpreter that is a script itself (the kernel follows 4 of them).
    const std::string inner = place.script("inner", "#!" + place.vztrace + "\n");
    CHECK(place.of(place.script("d", "#!" + inner + "\n")) == NextImage::kVztrace);
}

TEST_CASE("next_image: #!/usr/bin/env NAME is NAME as env finds it on the exec's PATH") {
    Place place;
    const std::string by_env = place.script("e", "#!/usr/bin/env vztrace\nprint(1)\n");
    CHECK(place.of(by_env) == NextImage::kVztrace);
    CHECK(place.of(place.script("f", "#!/usr/bin/env other\n")) == NextImage::kAnotherProgram);
    // The first directory of PATH holding NAME, as env's execvp takes it.
    const std::string first = place.dir.file("first");
    fs::create_directory(first);
    fs::copy_file("/bin/true", first + "/vztrace");
    CHECK(place.of(by_env, first + ":" + place.bin) == NextImage::kAnotherProgram);
    CHECK(place.of(by_env, place.bin + ":" + first) == NextImage::kVztrace);
    // Not found, or an option or an assignment where NAME goes: not to be told.
    CHECK(place.of(place.script("g", "#!/usr/bin/env missing\n")) == NextImage::kUnknown);
    CHECK(place.of(place.script("h", "#!/usr/bin/env -S vztrace -u\n")) == NextImage::kUnknown);
    CHECK(place.of(place.script("i", "#!/usr/bin/env A=1\n")) == NextImage::kUnknown);
}

TEST_CASE("next_image: what an exec may fail on, or could run anything, is not told") {
    Place place;
    CHECK(place.of(place.dir.file("missing")) == NextImage::kUnknown);
    CHECK(place.of(place.dir.path()) == NextImage::kUnknown);
    CHECK(place.of(place.script("j", "#!/nonexistent/interpreter\n")) == NextImage::kUnknown);
    CHECK(place.of(place.script("k", "echo no line of its own\n")) == NextImage::kUnknown);
    // ELF that is no program of this machine's: its class, its type, its architecture.
    std::ifstream program("/bin/true", std::ios::binary);
    std::string header(64, '\0');
    program.read(header.data(), 64);
    CHECK(place.of(place.script("n", header)) == NextImage::kAnotherProgram);
    for (const auto& [offset, value] : {std::pair{4, '\3'}, {16, '\1'}, {18, '\x28'}}) {
        std::string changed = header;
        changed[offset] = value;
        CHECK(place.of(place.script("o", changed)) == NextImage::kUnknown);
    }
    CHECK(place.of(place.script("p", header.substr(0, 20))) == NextImage::kUnknown);
    CHECK(place.of(place.script("l", "#!" + place.other + "\n", fs::perms::owner_read)) ==
          NextImage::kUnknown);
    // A first line longer than the kernel reads.
    CHECK(place.of(place.script("m", "#!" + place.other + std::string(300, ' ') + "x\n")) ==
          NextImage::kUnknown);
}
