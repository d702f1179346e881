#include "tracer/python_symbols.hpp"

#include <fmt/format.h>
#include <fnmatch.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "tracer/hook_state.hpp"
#include "tracer/profile_hooks.hpp"

namespace vztrace::tracer::symbols {
namespace {

// A file name as the system has it (the filesystem encoding, undecodable bytes as they
// were), which is what --include-files and --exclude-files give: the UTF-8 of the trace's
// names replaces such bytes, and a name holding one never matched.
std::string fs_bytes_of(PyObject* text) {
    if (text == nullptr || !PyUnicode_Check(text)) return "?";
    PyObject* bytes = PyUnicode_EncodeFSDefault(text);
    if (bytes == nullptr) {
        PyErr_Clear();
        return utf8_of(text);
    }
    std::string result(PyBytes_AS_STRING(bytes), static_cast<std::size_t>(PyBytes_GET_SIZE(bytes)));
    Py_DECREF(bytes);
    return result;
}

bool is_relative(const std::string& path) {
    return !path.empty() && path[0] != '/' && path[0] != '<';
}

std::string working_directory() {
    char cwd[4096];
    return ::getcwd(cwd, sizeof cwd) != nullptr ? std::string(cwd) : std::string();
}

// The working directory when each relative file name was last given to compile()
// (runpy.run_path("tasks.py"), exec of a file read by hand), by the name in UTF-8 and in
// the filesystem's encoding: a function of that code is in the file the name meant then.
// Taken at its first call, the name followed the program's os.chdir() since, to a file
// that did not exist (hunt AS). Under the GIL.
std::unordered_map<std::string, std::string> g_compiled_in;

std::string absolute_path(std::string path) {
    if (!is_relative(path)) return path;
    const auto compiled = g_compiled_in.find(path);
    const std::string cwd =
        compiled != g_compiled_in.end() ? compiled->second : working_directory();
    if (cwd.empty()) return path;
    if (path.rfind("./", 0) == 0) path.erase(0, 2);
    return fmt::format("{}/{}", cwd, path);
}

// The launcher's own frames (runpy runs `-m`, zip apps and directories) are not the
// program's calls: their code objects get kHiddenSymbol.
bool is_launcher_file(const std::string& filename) {
    static std::string stdlib_runpy;
    if (stdlib_runpy.empty()) {  // sys._stdlib_dir (3.11+) may not be set yet at start-up
        PyObject* dir = PySys_GetObject("_stdlib_dir");  // borrowed
        if (dir != nullptr && PyUnicode_Check(dir)) stdlib_runpy = utf8_of(dir) + "/runpy.py";
    }
    return filename == "<frozen runpy>" || (!stdlib_runpy.empty() && filename == stdlib_runpy);
}

// A directory or file prefix: "/src/app" takes /src/app and /src/app/..., not /src/apple.
bool under(const std::string& prefix, const std::string& file) {
    if (file.compare(0, prefix.size(), prefix) != 0) return false;
    return file.size() == prefix.size() || prefix.back() == '/' || file[prefix.size()] == '/';
}

bool matches(const std::string& pattern, const std::string& file) {
    if (pattern.find_first_of("*?[") == std::string::npos) return under(pattern, file);
    // A glob takes what it matches and what is under it, as a prefix does (a relative
    // pattern in a directory named "build[1]" is one, its directory's part escaped:
    // launcher/command_line.cpp). Written as a path that exists ("$PWD/src" there), it is
    // that path too.
    if (under(pattern, file) || ::fnmatch(pattern.c_str(), file.c_str(), 0) == 0) return true;
    const std::string below = pattern + (pattern.back() == '/' ? "*" : "/*");
    return ::fnmatch(below.c_str(), file.c_str(), 0) == 0;
}

// --include-files, --exclude-files, --ignore-frozen: decided once per code object, by
// its co_filename; a function left out is never recorded (nor the C calls its own code
// makes).
bool left_out_by_filters(PyObject* filename) {
    const TraceSettings& settings = hooks::g_session->settings();
    const bool by_files = !settings.include_files.empty() || !settings.exclude_files.empty();
    // The name in the filesystem's encoding only when a filter reads it: until start-up has
    // set that codec up, CPython encodes through the C library's wide characters, which was
    // five sixths of the cost of interning a code object.
    if (!settings.ignore_frozen && !by_files) return false;
    const std::string name = absolute_path(fs_bytes_of(filename));
    if (settings.ignore_frozen && name.rfind("<frozen ", 0) == 0) return true;
    if (!by_files) return false;
    // The patterns are lexically normal (launcher/command_line.cpp), and so is the file
    // matched against them: a module imported through sys.path's "app/../lib" has that
    // in its co_filename, and matched neither "lib" nor "app" as it should.
    const bool plain = name.find("/./") == std::string::npos &&
                       name.find("/../") == std::string::npos &&
                       name.find("//") == std::string::npos;
    const std::string file =
        plain || name[0] != '/' ? name : std::filesystem::path(name).lexically_normal().string();
    const auto any = [&file](const std::vector<std::string>& patterns) {
        for (const std::string& pattern : patterns) {
            if (matches(pattern, file)) return true;
        }
        return false;
    };
    if (!settings.include_files.empty() && !any(settings.include_files)) return true;
    return any(settings.exclude_files);
}

// Open addressing on (PyMethodDef*, owner): both live as long as the interpreter for
// built-in functions and types, so the pair names one C function for good.
struct CEntry {
    const void* method = nullptr;
    const void* owner = nullptr;
    SymbolId symbol = 0;
};

class CSymbolTable {
 public:
    CSymbolTable() : entries_(kInitialSize) {}

    VZ_ALWAYS_INLINE const CEntry* find(const void* method, const void* owner) const {
        std::size_t i = slot(method, owner);
        while (true) {
            const CEntry& entry = entries_[i];
            if (entry.method == method && entry.owner == owner) return &entry;
            if (entry.method == nullptr) return nullptr;
            i = (i + 1) & (entries_.size() - 1);
        }
    }

    void insert(const void* method, const void* owner, SymbolId symbol) {
        if ((count_ + 1) * 2 > entries_.size()) grow();
        std::size_t i = slot(method, owner);
        while (entries_[i].method != nullptr) i = (i + 1) & (entries_.size() - 1);
        entries_[i] = CEntry{method, owner, symbol};
        ++count_;
    }

 private:
    static constexpr std::size_t kInitialSize = 1024;

    std::size_t slot(const void* method, const void* owner) const {
        const auto key = reinterpret_cast<std::uintptr_t>(method) ^
                         (reinterpret_cast<std::uintptr_t>(owner) >> 4);
        return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> 20) &
               (entries_.size() - 1);
    }

    void grow() {
        std::vector<CEntry> old(entries_.size() * 2);
        old.swap(entries_);
        count_ = 0;
        for (const CEntry& entry : old) {
            if (entry.method != nullptr) insert(entry.method, entry.owner, entry.symbol);
        }
    }

    std::vector<CEntry> entries_;
    std::size_t count_ = 0;
};

CSymbolTable& c_symbols() {
    static CSymbolTable table;
    return table;
}

std::string type_name(PyTypeObject* type) { return type->tp_name; }

}  // namespace

std::string utf8_of(PyObject* text) {
    if (text == nullptr || !PyUnicode_Check(text)) return "?";
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(text, &size);
    if (data == nullptr) {  // lone surrogates (undecodable bytes of a path): escaped, \udcff
        PyErr_Clear();
        PyObject* bytes = PyUnicode_AsEncodedString(text, "utf-8", "backslashreplace");
        if (bytes == nullptr) {
            PyErr_Clear();
            return "?";
        }
        std::string result(PyBytes_AS_STRING(bytes),
                           static_cast<std::size_t>(PyBytes_GET_SIZE(bytes)));
        Py_DECREF(bytes);
        return result;
    }
    return {data, static_cast<std::size_t>(size)};
}

void note_compiled(PyObject* args) {
    if (args == nullptr || !PyTuple_Check(args) || PyTuple_GET_SIZE(args) < 2) return;
    PyObject* filename = PyTuple_GET_ITEM(args, 1);  // borrowed
    if (!PyUnicode_Check(filename)) return;
    std::string name = utf8_of(filename);
    if (!is_relative(name)) return;
    const std::string cwd = working_directory();
    if (cwd.empty()) return;
    if (!PyUnicode_IS_ASCII(filename)) {
        PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
        PyErr_Fetch(&type, &value, &traceback);
        g_compiled_in.insert_or_assign(fs_bytes_of(filename), cwd);
        PyErr_Restore(type, value, traceback);
    }
    g_compiled_in.insert_or_assign(std::move(name), cwd);
}

bool init() {
#if PY_VERSION_HEX >= 0x030C0000
    g_code_extra_index = PyUnstable_Eval_RequestCodeExtraIndex(nullptr);
#else
    g_code_extra_index = _PyEval_RequestCodeExtraIndex(nullptr);
#endif
    return g_code_extra_index >= 0;
}

namespace {

SymbolId intern_code_of(PyCodeObject* co) {
    PyObject* code = reinterpret_cast<PyObject*>(co);
    const std::string file = utf8_of(co->co_filename);
#if PY_VERSION_HEX < 0x030C0000
    // cProfile's code runs once its module has imported _lsprof (the class body, a method).
    if (VZ_UNLIKELY(file.ends_with("cProfile.py"))) profile::watch_c_profiler();
#endif
    const std::string path = absolute_path(file);
    const SymbolId id =
        is_launcher_file(file) || left_out_by_filters(co->co_filename)
            ? kHiddenSymbol
            : hooks::g_session->symbols().add_python(
                  utf8_of(co->co_qualname), path, static_cast<std::uint32_t>(co->co_firstlineno));
    void* extra = reinterpret_cast<void*>(static_cast<std::uintptr_t>(id) + 1);
#if PY_VERSION_HEX >= 0x030C0000
    if (PyUnstable_Code_SetExtra(code, g_code_extra_index, extra) != 0) PyErr_Clear();
#else
    if (_PyCode_SetExtra(code, g_code_extra_index, extra) != 0) PyErr_Clear();
#endif
    static bool layout_checked = false;
    if (!layout_checked) {
        layout_checked = true;
        const auto* table = static_cast<const CodeExtra*>(co->co_extra);
        g_direct_extra = table != nullptr && g_code_extra_index < table->size &&
                         table->extras[g_code_extra_index] == extra;
    }
    // CPython sizes a code object's extras for every index given out so far, and when the
    // code object goes calls each index's free function, with nothing stored there too. A
    // program that took an index after vztrace (a debugger, a JIT, through ctypes) had its
    // function called for code objects it never touched, and after it was gone (a
    // segfault at exit). The extras end at vztrace's here, as if vztrace had set them
    // before that index was given out; CPython grows them again for a later index's data.
    if (auto* table = static_cast<CodeExtra*>(co->co_extra); g_direct_extra && table != nullptr) {
        while (table->size > g_code_extra_index + 1 && table->extras[table->size - 1] == nullptr)
            --table->size;
    }
    return id;
}

}  // namespace

SymbolId intern_code(PyObject* code) {
    if (!PyCode_Check(code)) return kHiddenSymbol;
    // The frame hook can come here with an exception set (one thrown into a generator):
    // it is kept for the frame.
    PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    SymbolId id = kHiddenSymbol;
    try {
        id = intern_code_of(reinterpret_cast<PyCodeObject*>(code));
    } catch (const std::bad_alloc&) {
        // Inside a callback: no exception may reach CPython. The recording stops.
        hooks::g_session->stop_for_memory();
    }
    PyErr_Restore(type, value, traceback);
    return id;
}

namespace {

// Whether `found`, an attribute in a type's dict, holds the C method `method`: a method or
// class method descriptor of it, a static method wrapping it, or (a type's __new__) it bound
// to `type` itself.
bool holds_method(PyObject* found, const PyMethodDef* method, PyTypeObject* type) {
    if (Py_IS_TYPE(found, &PyMethodDescr_Type) || Py_IS_TYPE(found, &PyClassMethodDescr_Type)) {
        return reinterpret_cast<PyMethodDescrObject*>(found)->d_method == method;
    }
    if (PyCFunction_Check(found)) {
        const auto* function = reinterpret_cast<PyCFunctionObject*>(found);
        return function->m_ml == method && function->m_self == reinterpret_cast<PyObject*>(type);
    }
    if (Py_IS_TYPE(found, &PyStaticMethod_Type)) {
        PyObject* wrapped = PyObject_GetAttrString(found, "__func__");
        const bool holds = wrapped != nullptr && PyCFunction_Check(wrapped) &&
                           reinterpret_cast<PyCFunctionObject*>(wrapped)->m_ml == method;
        Py_XDECREF(wrapped);
        return holds;
    }
    return false;
}

// The type that defines the C method `function`, bound to `self`: list.append bound to an
// instance of a subclass of list is list's, as its method descriptor says (a call through
// the descriptor, `l.append(1)` on 3.12+, gets that name) and as cProfile names it, also
// when the subclass overrides append (super().append). Bound to a type, a class method, a
// static method (str.maketrans) and a type's __new__ (object.__new__) are that type's.
// Only at a callable's first sight.
PyTypeObject* defining_type(PyCFunctionObject* function, PyObject* self) {
    const PyMethodDef* method = function->m_ml;
    PyTypeObject* start =
        PyType_Check(self) && ((method->ml_flags & (METH_CLASS | METH_STATIC)) != 0 ||
                               std::strcmp(method->ml_name, "__new__") == 0)
            ? reinterpret_cast<PyTypeObject*>(self)
            : Py_TYPE(self);
    PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    PyTypeObject* defining = start;
    PyObject* key = PyUnicode_FromString(method->ml_name);
    PyObject* mro = start->tp_mro;  // borrowed
    if (key != nullptr && mro != nullptr && PyTuple_Check(mro)) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro); ++i) {
            auto* base = reinterpret_cast<PyTypeObject*>(PyTuple_GET_ITEM(mro, i));
            if (!PyType_Check(base)) continue;
#if PY_VERSION_HEX >= 0x030C0000
            PyObject* dict = PyType_GetDict(base);  // tp_dict is NULL for builtin types
#else
            PyObject* dict = Py_XNewRef(base->tp_dict);
#endif
            PyObject* found = dict != nullptr ? PyDict_GetItemWithError(dict, key) : nullptr;
            const bool defines = found != nullptr && holds_method(found, method, base);
            Py_XDECREF(dict);
            if (defines) {
                defining = base;
                break;
            }
        }
    }
    Py_XDECREF(key);
    PyErr_Clear();
    PyErr_Restore(type, value, traceback);
    return defining;
}

}  // namespace

namespace {
SymbolId intern_c_callable(PyObject* callable, const void* method, const void* owner,
                           PyObject* self);
}  // namespace

SymbolId of_c_callable(PyObject* callable) {
    const void* method = nullptr;
    const void* owner = nullptr;
    PyObject* self = nullptr;
    if (PyCFunction_Check(callable)) {
        auto* function = reinterpret_cast<PyCFunctionObject*>(callable);
        method = function->m_ml;
        self = function->m_self;
        // Bound to a type (a class or static method, a type's __new__, which all types
        // share one definition of): the type names it.
        owner = (self == nullptr || PyModule_Check(self) || PyType_Check(self))
                    ? static_cast<const void*>(self)
                    : Py_TYPE(self);
    } else {
        auto* descriptor = reinterpret_cast<PyMethodDescrObject*>(callable);
        method = descriptor->d_method;
        owner = descriptor->d_common.d_type;
    }
    if (const CEntry* entry = c_symbols().find(method, owner); VZ_LIKELY(entry != nullptr)) {
        return entry->symbol;
    }
    try {
        return intern_c_callable(callable, method, owner, self);
    } catch (const std::bad_alloc&) {
        // Inside a callback: no exception may reach CPython. The recording stops.
        hooks::g_session->stop_for_memory();
        return kHiddenSymbol;
    }
}

namespace {

SymbolId intern_c_callable(PyObject* callable, const void* method, const void* owner,
                           PyObject* self) {
    std::string name;
    if (PyCFunction_Check(callable)) {
        auto* function = reinterpret_cast<PyCFunctionObject*>(callable);
        const char* ml_name = function->m_ml->ml_name;
        if (self != nullptr && PyModule_Check(self)) {
            const char* module = PyModule_GetName(self);
            if (module == nullptr) PyErr_Clear();
            name = fmt::format("{}.{}", module != nullptr ? module : "?", ml_name);
        } else if (self != nullptr) {
            name = fmt::format("{}.{}", type_name(defining_type(function, self)), ml_name);
        } else if (function->m_module != nullptr && PyUnicode_Check(function->m_module)) {
            name = fmt::format("{}.{}", utf8_of(function->m_module), ml_name);
        } else {
            name = ml_name;
        }
    } else {
        auto* descriptor = reinterpret_cast<PyMethodDescrObject*>(callable);
        name = fmt::format("{}.{}", type_name(descriptor->d_common.d_type),
                           descriptor->d_method->ml_name);
    }
    const SymbolId id = hooks::g_session->symbols().add(std::move(name));
    c_symbols().insert(method, owner, id);
    return id;
}

}  // namespace

}  // namespace vztrace::tracer::symbols
