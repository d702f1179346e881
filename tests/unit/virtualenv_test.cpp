#include "embed/virtualenv.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "support/process.hpp"

using vztrace::embed::find_virtualenv;
using vztrace::testing::TempDir;

namespace {

void make_venv(const TempDir& dir, const std::string& name, const std::string& cfg) {
    dir.write(name + "/pyvenv.cfg", cfg);
    dir.write(name + "/bin/python3", "#!/bin/sh\n");
    chmod(dir.file(name + "/bin/python3").c_str(), 0755);
}

}  // namespace

TEST_CASE("VIRTUAL_ENV names the virtualenv and pyvenv.cfg its version") {
    TempDir dir;
    make_venv(dir, "env", "home = /usr/bin\nversion = 3.12.1\n");
    const auto venv = find_virtualenv(dir.file("env").c_str(), "/usr/bin");
    REQUIRE(venv);
    CHECK(venv->root == dir.file("env"));
    CHECK(venv->python == dir.file("env/bin/python3"));
    CHECK(venv->version == "3.12");
}

TEST_CASE("a venv's python first on PATH is the active virtualenv") {
    TempDir dir;
    make_venv(dir, "env", "version_info = 3.13.0.final.0\n");
    const std::string path = dir.file("env/bin") + ":/usr/bin";
    const auto venv = find_virtualenv(nullptr, path.c_str());
    REQUIRE(venv);
    CHECK(venv->version == "3.13");
}

TEST_CASE("a venv's bin/ on PATH is found however it is written") {
    // "env/bin/" and "env/bin/." gave "env/bin" as the venv's root: no venv, and the
    // program could not import its packages.
    TempDir dir;
    make_venv(dir, "env", "version = 3.12.1\n");
    for (const std::string& bin : {dir.file("env/bin/"), dir.file("env/bin/."),
                                   dir.file("env/./bin"), dir.file("env/bin/../bin//")}) {
        INFO(bin);
        const auto venv = find_virtualenv(nullptr, (bin + ":/usr/bin").c_str());
        REQUIRE(venv);
        CHECK(venv->root == dir.file("env"));
        CHECK(venv->python == dir.file("env/bin/python3"));
    }
    // Relative ones are made absolute (CPython's path calculation aborted on "./env/...",
    // and children of another working directory would not find it).
    const int status = vztrace::testing::in_forked_child([&] {
        if (::chdir(dir.path().c_str()) != 0) return 1;
        const auto by_path = find_virtualenv(nullptr, "./env/bin:/usr/bin");
        const auto by_variable = find_virtualenv("./env", nullptr);
        if (!by_path || by_path->root != dir.file("env")) return 2;
        if (!by_variable || by_variable->python != dir.file("env/bin/python3")) return 3;
        return 0;
    });
    CHECK(status == 0);
}

TEST_CASE("a plain python first on PATH means no virtualenv") {
    TempDir dir;
    dir.write("plain/bin/python3", "#!/bin/sh\n");
    chmod(dir.file("plain/bin/python3").c_str(), 0755);
    make_venv(dir, "env", "version = 3.12.1\n");
    const std::string path = dir.file("plain/bin") + ":" + dir.file("env/bin");
    CHECK_FALSE(find_virtualenv(nullptr, path.c_str()));
    CHECK_FALSE(find_virtualenv("", nullptr));
    CHECK_FALSE(find_virtualenv(dir.file("nowhere").c_str(), nullptr));
}

TEST_CASE("vztrace run from a venv's bin/, by its path or found on PATH, is in that venv") {
    // As python finds its venv from its own place: a link to vztrace in env/bin ran with
    // the base interpreter's paths unless the venv was activated.
    TempDir dir;
    make_venv(dir, "env", "version = 3.12.1\n");
    dir.write("elsewhere/vztrace", "#!/bin/sh\n");
    chmod(dir.file("elsewhere/vztrace").c_str(), 0755);
    REQUIRE(::symlink(dir.file("elsewhere/vztrace").c_str(), dir.file("env/bin/vztrace").c_str()) ==
            0);
    const auto by_path =
        vztrace::embed::virtualenv_of_invoked(dir.file("env/bin/vztrace"), nullptr);
    REQUIRE(by_path);
    CHECK(by_path->root == dir.file("env"));
    CHECK(by_path->python == dir.file("env/bin/python3"));
    const std::string path = "/nowhere:" + dir.file("env/bin");
    const auto on_path = vztrace::embed::virtualenv_of_invoked("vztrace", path.c_str());
    REQUIRE(on_path);
    CHECK(on_path->root == dir.file("env"));
    // The link's target is not in a venv, nor is a name PATH does not hold.
    CHECK_FALSE(vztrace::embed::virtualenv_of_invoked(dir.file("elsewhere/vztrace"), nullptr));
    CHECK_FALSE(vztrace::embed::virtualenv_of_invoked("vztrace", "/nowhere"));
    CHECK_FALSE(vztrace::embed::virtualenv_of_invoked("vztrace", nullptr));
}
