// A process's part of a process-tree trace: the binary form in which a child hands its
// ProcessCapture to the root (through the private parts directory). Same machine, same
// build: records are stored as they are in memory, behind a magic and a version.
#pragma once

#include <optional>
#include <string>

#include "tracer/capture.hpp"
#include "tracer/output_file.hpp"

namespace vztrace::tracer {

// Writes and commits `process` to `file`. Returns false with file.error() on failure.
bool write_part(const ProcessCapture& process, OutputFile& file);

// Reads a part back; nullopt with `error` set when the file is not a whole part.
std::optional<ProcessCapture> read_part(const std::string& path, std::string& error);

}  // namespace vztrace::tracer
