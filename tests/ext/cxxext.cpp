// A C++ extension of the program's, as numpy's or torch's parts are: its exceptions,
// strings and streams need the system's libstdc++.so. vztrace's executable carries a C++
// runtime of its own, unexported (launcher/CMakeLists.txt); the e2e tests check that the
// two never meet: the extension runs as under python.
#include <Python.h>

#include <map>
#include <sstream>
#include <stdexcept>
#include <string>

namespace {

// Throws and catches across a call, and builds its answer with the runtime's containers.
[[gnu::noinline]] void refuse(const std::string& word) {
    throw std::runtime_error("refused " + word);
}

PyObject* roundtrip(PyObject*, PyObject* argument) {
    const char* text = PyUnicode_AsUTF8(argument);
    if (text == nullptr) return nullptr;
    std::map<std::string, int> letters;
    for (const char* c = text; *c != 0; ++c) ++letters[std::string(1, *c)];
    std::ostringstream out;
    try {
        refuse(text);
    } catch (const std::exception& error) {
        out << error.what() << ":";
    }
    for (const auto& [letter, count] : letters) out << " " << letter << "=" << count;
    return PyUnicode_FromString(out.str().c_str());
}

PyMethodDef g_methods[] = {
    {"roundtrip", roundtrip, METH_O, "An exception, a map and a stream of libstdc++'s."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef g_module = {
    PyModuleDef_HEAD_INIT, "cxxext", nullptr, -1, g_methods, nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit_cxxext() { return PyModule_Create(&g_module); }
