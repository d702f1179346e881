// vztrace must run a program exactly as python does: same stdout and stderr bytes, same
// exit status, same sys.argv, sys.path, flags, __main__.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <sstream>

#include "e2e/e2e.hpp"

using namespace vztrace::e2e;
using vztrace::testing::load_trace;
using vztrace::testing::RunOptions;
using vztrace::testing::TempDir;

namespace {

void check_parity(const std::vector<std::string>& args, const RunOptions& options = {}) {
    TempDir dir;
    const Pair pair = run_both(args, options, dir.file(vztrace::testing::trace_name("trace")));
    INFO(describe(pair));
    CHECK(pair.vztrace.status() == pair.python.status());
    CHECK(pair.vztrace.out == pair.python.out);
    CHECK(pair.vztrace.err == normalized_python_stderr(pair.python.err));
}

}  // namespace

TEST_CASE("a script sees the same argv, sys.path, flags, locale and __main__ as under python") {
    check_parity({script("parity_info.py"), "one", "two words"});
}

TEST_CASE("the program finds no module imported that python had not: atexit, gc") {
    // vztrace imported atexit (its last atexit callback) and, with --log-gc, gc.
    RunOptions options;
    for (const char* name : {"VZTRACE_LOG_GC", "VZTRACE_LOG_PRINT", "VZTRACE_LOG_ASYNC",
                             "VZTRACE_LOG_FUNC_ARGS", "VZTRACE_NO_STARTUP"})
        options.env[name] = "1";
    check_parity({script("parity_info.py")}, options);
}

TEST_CASE("python's -X importtime lists the modules python imports, none of vztrace's") {
    // vztrace's import of atexit (and of gc with --log-gc) printed a line python does not.
    // The times differ from run to run: the module column is compared.
    const auto imported = [](const std::string& err) {
        std::vector<std::string> names;
        std::istringstream lines(err);
        for (std::string line; std::getline(lines, line);) {
            if (line.starts_with("import time:")) names.push_back(line.substr(line.rfind('|') + 1));
        }
        return names;
    };
    RunOptions options;
    options.env["VZTRACE_LOG_GC"] = "1";
    TempDir dir;
    const Pair pair = run_both({"-X", "importtime", "-c", "pass"}, options,
                               dir.file(vztrace::testing::trace_name("trace")));
    INFO(describe(pair));
    CHECK(pair.vztrace.status() == 0);
    CHECK(imported(pair.python.err).size() > 10);
    CHECK(imported(pair.vztrace.err) == imported(pair.python.err));
}

TEST_CASE("python's -v names no module of vztrace's") {
    // The spec of a built-in module vztrace makes (3.12+: _signal, sys.monitoring's
    // helpers) was a module, and its end printed "# destroy vztrace_spec".
    TempDir dir;
    const auto result = run_vztrace(
        {"--quiet", "-o", dir.file(vztrace::testing::trace_name("t")), "-v", "-c", "pass"});
    CHECK(result.status() == 0);
    CHECK(result.err.find("# destroy ") != std::string::npos);
    CHECK(result.err.find("vztrace") == std::string::npos);
}

TEST_CASE("the module functions vztrace stands in for look as python's: self, module, signature") {
    // Their __self__ was None, their signatures began with `module`, their docs were
    // vztrace's (signal.signal copies _signal.signal's), print's too with --log-print.
    check_parity({script("stand_ins.py")});
    RunOptions options;
    options.env["VZTRACE_LOG_PRINT"] = "1";
    check_parity({script("stand_ins.py")}, options);
}

TEST_CASE("python's own flags are honoured: -u -B -E -s -S -I -P -O -X -W") {
    check_parity({"-u", "-B", "-E", "-s", script("parity_info.py")});
    check_parity({"-S", "-O", "-X", "utf8", "-W", "error", script("parity_info.py"), "x"});
    check_parity({"-I", script("parity_info.py")});
    check_parity({"-P", "-OO", "-c", "import sys; print(sys.path[0], sys.flags, __doc__)"});
}

TEST_CASE("the C locale is coerced as python does it") {
    RunOptions options;
    options.env["LC_ALL"] = "C";
    options.env["LANG"] = "C";
    check_parity({script("parity_info.py")}, options);
    options.env["PYTHONUTF8"] = "0";
    check_parity({script("parity_info.py")}, options);
}

TEST_CASE("exit paths give python's status, stdout and stderr") {
    for (const char* mode : {"normal", "exit3", "exitmsg", "raise", "kbint", "sigterm", "osexit"}) {
        DYNAMIC_SECTION("mode " << mode) { check_parity({script("exits.py"), mode}); }
    }
}

TEST_CASE("module mode runs a package's __main__ and -c runs code with its arguments") {
    RunOptions options;
    options.cwd = kScripts;
    check_parity({"-m", "mypkg", "arg"}, options);
    check_parity({"-c", "import sys; print(sys.argv, sys.path[0] == '')", "a", "-b"}, options);
}

TEST_CASE("a directory and a zip file with __main__.py run as under python") {
    TempDir dir;
    dir.write("app/__main__.py",
              "import sys\nprint('app main', __name__, sys.argv[0].endswith(('app', 'app.zip')),"
              " sys.path[0] == sys.argv[0])\n");
    check_parity({dir.file("app"), "x"});
    const auto zipped = vztrace::testing::run_process(
        {kPython, "-c",
         "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z: "
         "z.write(sys.argv[2], '__main__.py')",
         dir.file("app.zip"), dir.file("app/__main__.py")});
    REQUIRE(zipped.status() == 0);
    check_parity({dir.file("app.zip")});
}

TEST_CASE("a script read from stdin runs as under python") {
    RunOptions options;
    options.stdin_data = "import sys\nprint('from stdin', sys.argv)\nraise SystemExit(5)\n";
    check_parity({"-", "arg"}, options);
}

TEST_CASE("a missing script or module fails as under python, in one line") {
    TempDir dir;
    const Pair missing_script =
        run_both({dir.file("nope.py")}, {}, dir.file(vztrace::testing::trace_name("t")));
    CHECK(missing_script.vztrace.status() == 2);
    CHECK(missing_script.vztrace.status() == missing_script.python.status());
    CHECK(missing_script.vztrace.err == normalized_python_stderr(missing_script.python.err));
    CHECK(std::count(missing_script.vztrace.err.begin(), missing_script.vztrace.err.end(), '\n') ==
          1);
    const Pair missing_module =
        run_both({"-m", "no_such_module_xyz"}, {}, dir.file(vztrace::testing::trace_name("t")));
    CHECK(missing_module.vztrace.status() == missing_module.python.status());
    CHECK(missing_module.vztrace.err == normalized_python_stderr(missing_module.python.err));
}

TEST_CASE("vztrace's own usage errors are one line on stderr and status 2") {
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"--no-such-option", "x.py"}, {"-Z", "x.py"}, {}, {"run"}}) {
        const auto result = run_vztrace(args);
        INFO(result.err);
        CHECK(result.status() == 2);
        CHECK(result.out.empty());
        CHECK(result.err.rfind("vztrace: error: ", 0) == 0);
        CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
    }
}

TEST_CASE("option --version names vztrace and the embedded python") {
    const auto result = run_vztrace({"--version"});
    CHECK(result.status() == 0);
    CHECK(result.out.rfind("vztrace ", 0) == 0);
    CHECK(result.out.find("Python 3." + std::to_string(kPythonMinor)) != std::string::npos);
}

TEST_CASE("sys.executable is vztrace, and children started with it run as under python") {
    check_parity({script("child.py")});
    TempDir dir;
    const auto result = run_vztrace({"--quiet", "-o", dir.file(vztrace::testing::trace_name("t")),
                                     "-c", "import sys; print(sys.executable)"});
    CHECK(result.out == kVztrace + "\n");
}

TEST_CASE("a child's --version, -h, --help, -R and a program on standard input are python's") {
    // vztrace answered --version and --help with its own, refused -R, and without a
    // program exited 2 instead of reading it from standard input.
    check_parity({script("child_command_lines.py")});
}

TEST_CASE("threads and processes are named without running the program's name properties") {
    check_parity({script("name_properties.py")});
}

TEST_CASE("_thread's errors are python's: a function that is not callable, one that raises") {
    // Before: a thread was started for 1 or None (its TypeError came later, as an
    // unraisable one), and the unraisable error of a raising function named vztrace's
    // bootstrap instead of the program's function.
    check_parity({script("thread_errors.py")});
}

TEST_CASE("an audit hook of the program's sees no event of vztrace's in new threads") {
    TempDir dir;
    const std::string trace_path = dir.file(vztrace::testing::trace_name("t"));
    const Pair pair = run_both({script("audited_threads.py")}, {}, trace_path);
    INFO(describe(pair));
    CHECK(pair.vztrace.status() == pair.python.status());
    CHECK(pair.vztrace.out == "events seen: []\n");
    CHECK(pair.vztrace.err == normalized_python_stderr(pair.python.err));
    CHECK(load_trace(trace_path).count_prefix("work (") == 3);
}

TEST_CASE("an audit hook of the program's sees the program's function start each thread") {
    // Before: 3.12 and 3.13 showed it vztrace's bootstrap (vztrace_thread_bootstrap).
    check_parity({script("audited_thread_starts.py")});
}

TEST_CASE("sys.setprofile called while it installs a function is refused as under python") {
    check_parity({script("reentrant_setprofile.py")});
}

TEST_CASE("an active virtualenv's site-packages import as under its python") {
    TempDir dir;
    const auto created =
        vztrace::testing::run_process({kPython, "-m", "venv", "--without-pip", dir.file("env")});
    REQUIRE(created.status() == 0);
    const std::string site =
        dir.file("env/lib/python3." + std::to_string(kPythonMinor) + "/site-packages/venvmod.py");
    dir.write(site.substr(dir.path().size() + 1), "WHERE = 'inside the venv'\n");
    // Its children are in it too, whatever environment the program gives them: python
    // finds the venv from sys.executable (they were not: vztrace looked at their
    // VIRTUAL_ENV and PATH).
    dir.write("use_venv.py",
              "import os, subprocess, sys, venvmod\nprint(venvmod.WHERE, venvmod.__file__)\n"
              "print(sys.prefix, sys.base_prefix != sys.prefix)\nprint(sys.path)\n"
              "child = [sys.executable, '-c', 'import sys, venvmod; print(sys.prefix)']\n"
              // A sanitizer build's leak checker settings pass (nothing of vztrace's).
              "san = {k: v for k, v in os.environ.items() if k.endswith('SAN_OPTIONS')}\n"
              "bare = subprocess.run(child, env={'PATH': '/usr/bin:/bin', **san},\n"
              "                      capture_output=True)\n"
              "kept = {k: v for k, v in os.environ.items() if k not in ('PATH', 'VIRTUAL_ENV')}\n"
              "rest = subprocess.run(child, env=kept, capture_output=True)\n"
              "print(bare.stdout, bare.returncode, rest.stdout, rest.returncode)\n");
    RunOptions options;
    options.env["VIRTUAL_ENV"] = dir.file("env");
    options.env["PATH"] = dir.file("env/bin") + ":" + std::string(std::getenv("PATH"));
    const auto venv_python =
        vztrace::testing::run_process({dir.file("env/bin/python"), dir.file("use_venv.py")});
    const auto traced = run_vztrace(
        {"--quiet", "-o", dir.file(vztrace::testing::trace_name("t")), dir.file("use_venv.py")},
        options);
    INFO(venv_python.err << traced.err);
    REQUIRE(venv_python.status() == 0);
    CHECK(traced.status() == 0);
    CHECK(traced.out == venv_python.out);
    CHECK(traced.out.find("inside the venv") != std::string::npos);

    {
        INFO("found through vztrace's own place: a link to it in the venv's bin/");
        // Not activated: it ran with the base interpreter's paths (python's link there
        // finds its venv from its own place).
        REQUIRE(::symlink(kVztrace.c_str(), dir.file("env/bin/vztrace").c_str()) == 0);
        RunOptions bare;
        bare.env["VIRTUAL_ENV"] = std::nullopt;
        const auto linked = vztrace::testing::run_process(
            {dir.file("env/bin/vztrace"), "--quiet", "-o",
             dir.file(vztrace::testing::trace_name("t")), dir.file("use_venv.py")},
            bare);
        INFO(linked.err);
        CHECK(linked.status() == 0);
        CHECK(linked.out == venv_python.out);
    }
    {
        INFO("found through PATH alone");
        options.env["VIRTUAL_ENV"] = std::nullopt;
        const auto via_path = run_vztrace(
            {"--quiet", "-o", dir.file(vztrace::testing::trace_name("t")), dir.file("use_venv.py")},
            options);
        CHECK(via_path.out == venv_python.out);
    }
    {
        INFO("found through a relative PATH entry");
        // "./env/bin" first on PATH: the process died in CPython's path calculation
        // (munmap_chunk(): invalid pointer), before the program ran.
        options.env["VIRTUAL_ENV"] = std::nullopt;
        options.env["PATH"] = "./env/bin:" + std::string(std::getenv("PATH"));
        options.cwd = dir.path();
        const auto relative = run_vztrace(
            {"--quiet", "-o", dir.file(vztrace::testing::trace_name("t")), dir.file("use_venv.py")},
            options);
        INFO(relative.err);
        CHECK(relative.status() == 0);
        CHECK(relative.out == venv_python.out);
    }
}

TEST_CASE("a virtualenv of another Python version is a clear error, not a crash") {
    TempDir dir;
    dir.write("old/pyvenv.cfg", "home = /usr/bin\nversion = 2.7.18\n");
    dir.write("old/bin/python3", "#!/bin/sh\nexit 1\n");
    chmod(dir.file("old/bin/python3").c_str(), 0755);
    RunOptions options;
    options.env["VIRTUAL_ENV"] = dir.file("old");
    const auto result = run_vztrace({"-c", "print('ran')"}, options);
    CHECK(result.status() == 3);
    CHECK(result.out.empty());
    CHECK(result.err.find("vztrace: error: the virtualenv") == 0);
    CHECK(result.err.find("2.7") != std::string::npos);
}
