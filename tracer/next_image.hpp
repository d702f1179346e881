// What an exec is about to run: vztrace's own executable (which goes on with the recording
// as the process's next image), another program, or what cannot be told.
#pragma once

#include <sys/stat.h>

namespace vztrace::tracer {

enum class NextImage {
    kVztrace,         // vztrace's executable, directly or as a script's interpreter
    kAnotherProgram,  // an executable that runs something else: the recording ends with it
    kUnknown,         // the exec may well fail, or its program cannot be told from here
};

// The program an execve of `path` (a descriptor's as /proc/self/fd/N) with environment
// `envp` runs, where `self` is the identity of vztrace's executable. A script's `#!` line
// is followed as the kernel follows it (to 4 interpreters deep), and `#!/usr/bin/env NAME`
// through the PATH of `envp`, as env looks NAME up. Reads the file's first line.
NextImage next_image(const char* path, const struct stat& self, char* const envp[]);

}  // namespace vztrace::tracer
