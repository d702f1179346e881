// RootRegistry: how a vztrace started with an environment of its own (a program's
// `subprocess.run([sys.executable, ...], env={...})`, or `env -i`) still finds the traced
// tree it belongs to. Children normally learn of their root from the VZTRACE_* variables
// they inherit. Each root also leaves an entry, named by its pid and start time, that holds
// those variables, in a directory of the user's own that needs no environment to find
// (/tmp/vztrace-roots-UID-PIDNS, mode 0700). A vztrace without VZTRACE_ROOT_PID walks its
// ancestors and takes the variables of the nearest root among them. No Python.h here.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace vztrace::tracer {

// Whether this process is in a traced tree: VZTRACE_ROOT_PID names its root (inherited,
// adopted from an ancestor, or its own).
bool in_traced_tree();

// "/tmp/vztrace-roots-<euid>-<the pid namespace's inode>" ("/tmp/vztrace-roots-<euid>"
// without /proc).
std::string default_registry_dir();

// Leaves this process's entry in `registry`: every VZTRACE_* variable of its environment,
// and those of `also` ("NAME=value", in the place of the environment's). Does nothing when
// the directory cannot be made or is not the user's own and private.
void register_root(const std::string& registry, const std::vector<std::string>& also = {});

// The variables of the entry an earlier image of this process (the same pid and start
// time: it exec'd vztrace) left, or none; the entry is this image's from now on
// (unregister_root removes it).
std::optional<std::vector<std::string>> take_own_entry(const std::string& registry);

// Removes the entry this process left, if it left one (a forked child never does).
void unregister_root();
// The path of that entry (empty: none).
std::string registered_entry();

// Whether `root` (a live process, by its pid and start time) has its entry in `registry`:
// until it has collected its children.
bool root_registered(const std::string& registry, pid_t root);

// The VZTRACE_* variables ("NAME=value") of the nearest of `self` (an earlier image of it:
// a root that exec'd) and its ancestors with an entry in `registry`, or none. Entries of processes
// that are gone are removed on the way.
std::optional<std::vector<std::string>> ancestor_root_environment(const std::string& registry,
                                                                  pid_t self);

// When this process has no VZTRACE_ROOT_PID, sets the variables of its nearest registered
// ancestor that its environment lacks. Returns whether it found one.
bool adopt_ancestor_root(const std::string& registry);

// Once the settings are read, before the interpreter copies the environment: a process
// that adopted them takes the VZTRACE_* variables it was not given out again, so the
// program finds its environment as it was made (env={}: empty) and passes on no more to
// its own children, whose vztrace finds the root the same way.
void leave_environment_as_given();

}  // namespace vztrace::tracer
