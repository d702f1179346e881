// Finding the virtualenv a user means when they type `python`: $VIRTUAL_ENV, or a venv's
// python first on PATH. No Python.h: plain file-system facts, unit-tested.
#pragma once

#include <optional>
#include <string>

namespace vztrace::embed {

struct Virtualenv {
    std::string root;     // the directory holding pyvenv.cfg
    std::string python;   // root/bin/python3 (or python)
    std::string version;  // "3.12" from pyvenv.cfg, empty if it does not say
};

// `virtual_env` and `path` are the values of $VIRTUAL_ENV and $PATH (null when unset).
std::optional<Virtualenv> find_virtualenv(const char* virtual_env, const char* path);

// The virtualenv that holds vztrace as it was run (`invoked`: argv[0], found on `path`
// when it names no directory), as python finds its own from its executable's place:
// pyvenv.cfg beside it or one level up, a link not followed (a link to vztrace in a venv's
// bin/ runs in that venv).
std::optional<Virtualenv> virtualenv_of_invoked(const std::string& invoked, const char* path);

// "3.12" from a pyvenv.cfg's `version = 3.12.1` (or `version_info`); empty if absent.
std::string read_venv_version(const std::string& pyvenv_cfg);

}  // namespace vztrace::embed
