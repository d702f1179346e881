// vztrace's modules: shared objects that only some subcommands need, kept out of the
// executable so that they cost a traced run nothing (launcher/view_server.hpp and
// tracer/format/json_events.hpp say what each one saves). A module sits beside the
// executable in the build tree and in an install's lib/vztrace/. No Python.h.
#pragma once

#include <string>

namespace vztrace::format {

// `symbol` of `module` (a file name such as "vztrace-json-events.so"), loaded the first
// time and never unloaded; null, with `error` set to one line, if the module is missing,
// cannot be loaded or lacks the symbol.
void* module_symbol(const char* module, const char* symbol, std::string& error);

}  // namespace vztrace::format
