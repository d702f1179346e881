#include "e2e/e2e.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

namespace vztrace::e2e {

namespace {
const char* sanitized_vztrace() {
    const char* path = std::getenv("VZTRACE_TEST_SANITIZED_VZTRACE");
    return path != nullptr && *path != '\0' ? path : nullptr;
}
}  // namespace

std::string vztrace_under_test() {
    const char* sanitized = sanitized_vztrace();
    return sanitized != nullptr ? sanitized : VZTRACE_BIN;
}

bool static_cxx_runtime() {
#ifdef VZTRACE_TEST_STATIC_CXX_RUNTIME
    return sanitized_vztrace() == nullptr;
#else
    return false;
#endif
}

const char* const kPythonBinary = VZTRACE_TEST_PYTHON;
const char* const kExtensionsDirectory = VZTRACE_TEST_EXTENSIONS;
const int kPythonMinor = VZTRACE_TEST_PYTHON_MINOR;

Pair run_both(const std::vector<std::string>& args, const testing::RunOptions& options,
              const std::string& trace_path) {
    std::vector<std::string> python_argv = {kPython};
    python_argv.insert(python_argv.end(), args.begin(), args.end());
    std::vector<std::string> vztrace_argv = {kVztrace, "--quiet", "-o", trace_path};
    vztrace_argv.insert(vztrace_argv.end(), args.begin(), args.end());
    return Pair{testing::run_process(python_argv, options),
                testing::run_process(vztrace_argv, options)};
}

std::string normalized_python_stderr(const std::string& err) {
    std::string result = err;
    const std::string from = kPython + ":";
    for (std::size_t at = result.find(from); at != std::string::npos; at = result.find(from, at)) {
        result.replace(at, from.size(), kVztrace + ":");
    }
    return result;
}

std::string describe(const Pair& pair) {
    return "python status " + std::to_string(pair.python.status()) + "\n--- python stdout\n" +
           pair.python.out + "--- python stderr\n" + pair.python.err + "\nvztrace status " +
           std::to_string(pair.vztrace.status()) + "\n--- vztrace stdout\n" + pair.vztrace.out +
           "--- vztrace stderr\n" + pair.vztrace.err;
}

testing::ProcessResult run_vztrace(const std::vector<std::string>& args,
                                   const testing::RunOptions& options) {
    std::vector<std::string> argv = {kVztrace};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::run_process(argv, options);
}

Traced traced(const std::vector<std::string>& options, const std::vector<std::string>& program,
              const testing::TempDir& dir) {
    const std::string path = dir.file(testing::trace_name("trace"));
    std::vector<std::string> args = {"--quiet", "-o", path};
    args.insert(args.end(), options.begin(), options.end());
    args.insert(args.end(), program.begin(), program.end());
    Traced run{run_vztrace(args), {}};
    INFO(run.result.err);
    REQUIRE(run.result.status() == 0);
    run.trace = testing::load_trace(path);
    return run;
}

std::string lone_copy(const testing::TempDir& dir) {
    const std::string copy = dir.file("vztrace");
    std::filesystem::copy_file(kVztrace, copy);
    std::filesystem::permissions(copy, std::filesystem::perms::owner_all);
    return copy;
}

}  // namespace vztrace::e2e
