#include <Python.h>

#include "embed/interpreter.hpp"

#include <dlfcn.h>
#include <fmt/format.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "embed/script_module.hpp"
#include "embed/setup_error.hpp"
#include "embed/virtualenv.hpp"
#include "tracer/python_hooks.hpp"
#include "tracer/root_registry.hpp"
#include "tracer/terminating_signals.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#ifndef VZTRACE_PYTHON_EXECUTABLE
#error "VZTRACE_PYTHON_EXECUTABLE must be defined by the build"
#endif

namespace vztrace::embed {
namespace {

std::string self_executable() {
    char buffer[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof buffer - 1);
    if (n <= 0) throw SetupError(ExitCode::kEnvironment, "cannot find vztrace's own path");
    return {buffer, static_cast<std::size_t>(n)};
}

void check(PyStatus status, PyConfig* config) {
    if (!PyStatus_Exception(status)) return;
    if (config != nullptr) PyConfig_Clear(config);
    tracer::end_before_program();  // -V, --help, a bad option: no program ran
    if (PyStatus_IsExit(status)) std::exit(status.exitcode);
    Py_ExitStatusException(status);  // prints python's own message, as python would
}

// Where a traced tree's root found the python of its paths, for its children.
constexpr const char* kPathsPython = "VZTRACE_PATHS_PYTHON";

// The python whose paths (prefix, site-packages) the program should get: the virtualenv's
// that holds vztrace as it was run (a link in its bin/), else the active one's, else the
// interpreter vztrace was built against. A child of a traced tree takes its root's,
// whatever environment the program gave it: python finds a virtualenv from
// sys.executable, which the child shares with its parent.
std::string python_for_paths(const std::string& argv0) {
    const char* inherited = std::getenv(kPathsPython);
    if (tracer::in_traced_tree() && inherited != nullptr && *inherited != '\0') {
        return inherited;
    }
    auto venv = virtualenv_of_invoked(argv0, std::getenv("PATH"));
    if (!venv) venv = find_virtualenv(std::getenv("VIRTUAL_ENV"), std::getenv("PATH"));
    if (!venv) return VZTRACE_PYTHON_EXECUTABLE;
    const std::string embedded = fmt::format("{}.{}", PY_MAJOR_VERSION, PY_MINOR_VERSION);
    if (!venv->version.empty() && venv->version != embedded) {
        throw SetupError(ExitCode::kEnvironment,
                         fmt::format("the virtualenv '{}' is Python {}, but this vztrace embeds "
                                     "Python {}; use a vztrace built with "
                                     "-DVZTRACE_PYTHON={}/bin/python",
                                     venv->root, venv->version, embedded, venv->root));
    }
    return venv->python;
}

#if defined(__SANITIZE_ADDRESS__)
// Built with the sanitizers only. CPython does not free every object at finalisation
// (static types, built-in modules' state), under python as under vztrace, and what its
// allocators hand out past 512 bytes (or of 0) comes from malloc. A suppression would have
// LeakSanitizer symbolize each of those at exit, reading the debug information of every
// library loaded: 0.17 s of each traced process, of 0.47 for `-c "import json"`.
// Told at allocation instead, through a hook on CPython's object and memory allocators,
// LeakSanitizer never reports them. vztrace allocates nothing through them: its own
// allocations are still checked.
struct Unchecked {
    static void* malloc(void* ctx, std::size_t size) {
        __lsan::ScopedDisabler unchecked;
        auto* next = static_cast<PyMemAllocatorEx*>(ctx);
        return next->malloc(next->ctx, size);
    }
    static void* calloc(void* ctx, std::size_t count, std::size_t size) {
        __lsan::ScopedDisabler unchecked;
        auto* next = static_cast<PyMemAllocatorEx*>(ctx);
        return next->calloc(next->ctx, count, size);
    }
    static void* realloc(void* ctx, void* block, std::size_t size) {
        __lsan::ScopedDisabler unchecked;
        auto* next = static_cast<PyMemAllocatorEx*>(ctx);
        return next->realloc(next->ctx, block, size);
    }
    static void free(void* ctx, void* block) {
        auto* next = static_cast<PyMemAllocatorEx*>(ctx);
        next->free(next->ctx, block);
    }
};
PyMemAllocatorEx cpython_objects{};
PyMemAllocatorEx cpython_memory{};

// Between pre-initialisation (which picks the allocators, PYTHONMALLOC) and initialisation,
// where CPython allows a hook.
void leave_cpython_objects_unchecked() {
    for (auto [domain, next] : {std::pair{PYMEM_DOMAIN_OBJ, &cpython_objects},
                                std::pair{PYMEM_DOMAIN_MEM, &cpython_memory}}) {
        PyMem_GetAllocator(domain, next);
        PyMemAllocatorEx hook{next, Unchecked::malloc, Unchecked::calloc, Unchecked::realloc,
                              Unchecked::free};
        PyMem_SetAllocator(domain, &hook);
    }
}
#else
void leave_cpython_objects_unchecked() {}
#endif

}  // namespace

std::string describe_python() {
    Dl_info info{};
    const char* library =
        ::dladdr(reinterpret_cast<void*>(&Py_GetVersion), &info) != 0 && info.dli_fname != nullptr
            ? info.dli_fname
            : "statically linked";
    std::string version = Py_GetVersion();
    version = version.substr(0, version.find(' '));
    return fmt::format("Python {} ({}; paths from {})", version, library,
                       VZTRACE_PYTHON_EXECUTABLE);
}

int run_program(const RunRequest& request) {
    const std::string self = self_executable();
    const std::string paths_python = python_for_paths(request.argv0);
    ::setenv(kPathsPython, paths_python.c_str(), 1);  // before the tree's plan registers it
    // From before the tree's files exist (the private directory, the registry's entry)
    // until vztrace's handlers know them: a signal then removes them, or is kept for the
    // program of an image exec'd by a recorded one (see signals::EarlyEnd).
    std::optional<tracer::signals::HeldAtStart> held(std::in_place);
    // The image before this one held them across its exec: let go at the end, not kept held.
    if (request.signals_held_by_earlier_image) held->held_by_earlier_image();
    tracer::TreePlan plan;
    if (std::string error = tracer::plan_process_tree(request.trace, plan); !error.empty()) {
        throw SetupError(ExitCode::kUsage, error);
    }
    const bool traced = plan.role != tracer::ProcessRole::kUntraced;
    if (!traced) held.reset();

    std::vector<std::string> args;
    args.reserve(request.python_argv.size() + 1);
    args.push_back(request.argv0);
    args.insert(args.end(), request.python_argv.begin(), request.python_argv.end());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const auto argc = static_cast<Py_ssize_t>(args.size());

    // As python's own main: the pre-configuration (locale, UTF-8 mode, -E/-I, -X utf8)
    // is read from the same argv.
    PyPreConfig preconfig;
    PyPreConfig_InitPythonConfig(&preconfig);
    check(Py_PreInitializeFromBytesArgs(&preconfig, argc, argv.data()), nullptr);
    leave_cpython_objects_unchecked();

    // After pre-initialisation, so the runtime's state (audit hooks, Py_AtExit) is kept.
    if (traced) {
        const std::string error =
            tracer::prepare_tracing(request.trace, plan, request.process_name);
        if (!error.empty()) throw SetupError(ExitCode::kUsage, error);
    }
    held.reset();

    // `import vztrace` in the program, traced or not (untraced, its calls do nothing).
    register_script_module();

    tracer::leave_environment_as_given();
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    check(PyConfig_SetBytesArgv(&config, argc, argv.data()), &config);
    // Python names itself in its messages by argv[0] as typed ("python3: can't open file").
    check(PyConfig_SetBytesString(&config, &config.program_name, request.argv0.c_str()), &config);
    // getpath and site find the prefix and the virtualenv from the executable's place.
    check(PyConfig_SetBytesString(&config, &config.executable, paths_python.c_str()), &config);
    check(Py_InitializeFromConfig(&config), &config);
    PyConfig_Clear(&config);

    // Children started with sys.executable (subprocess, multiprocessing spawn) re-enter
    // vztrace, which accepts python's argv.
    PyObject* executable = PyUnicode_DecodeFSDefault(self.c_str());
    if (executable == nullptr || PySys_SetObject("executable", executable) != 0) {
        PyErr_Clear();
    }
    Py_XDECREF(executable);

    if (traced) tracer::program_starts();
    const int status = Py_RunMain();
    if (status == 0 && !tracer::trace_written())
        return static_cast<int>(ExitCode::kTraceNotWritten);
    return status;
}

}  // namespace vztrace::embed
