#include "tracer/next_image.hpp"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

namespace vztrace::tracer {
namespace {

// The kernel reads this much of a script for its `#!` line (BINPRM_BUF_SIZE), and follows
// an interpreter that is a script itself this many times.
constexpr std::size_t kLineBytes = 256;
constexpr int kInterpreterDepth = 4;

// An ELF executable the kernel would run here: this machine's class, byte order and
// architecture, a program or a position-independent one. Anything else fails the exec
// (ENOEXEC), which the recording is to outlive.
bool runs_here(std::string_view bytes) {
    ElfW(Ehdr) header{};
    if (bytes.size() < sizeof header) return false;
    std::memcpy(&header, bytes.data(), sizeof header);
    const unsigned char own_class = sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32;
    const unsigned char own_order =
        __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB;
#if defined(__x86_64__)
    constexpr int kOwnMachine = EM_X86_64;
#elif defined(__aarch64__)
    constexpr int kOwnMachine = EM_AARCH64;
#elif defined(__i386__)
    constexpr int kOwnMachine = EM_386;
#else
    constexpr int kOwnMachine = -1;  // not checked
#endif
    return header.e_ident[EI_CLASS] == own_class && header.e_ident[EI_DATA] == own_order &&
           (header.e_type == ET_EXEC || header.e_type == ET_DYN) &&
           (kOwnMachine < 0 || header.e_machine == kOwnMachine);
}

bool same_file(const struct stat& a, const struct stat& b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// The directories of PATH in `envp`, as env's execvp searches them (glibc's default
// without one).
std::string_view search_path(char* const envp[]) {
    for (char* const* variable = envp; variable != nullptr && *variable != nullptr; ++variable) {
        const std::string_view text = *variable;
        if (text.starts_with("PATH=")) return text.substr(5);
    }
    return "/bin:/usr/bin";
}

NextImage classify(const std::string& path, const struct stat& self, char* const envp[], int depth);

// `#!/usr/bin/env NAME`: NAME as env finds it. An option or an assignment in place of NAME
// (`-S vztrace -o t.pftrace`, `A=1 vztrace`) is beyond telling.
NextImage through_env(std::string_view name, const struct stat& self, char* const envp[],
                      int depth) {
    if (name.empty() || name.front() == '-' || name.find_first_of("= \t") != name.npos) {
        return NextImage::kUnknown;
    }
    if (name.find('/') != name.npos) return classify(std::string(name), self, envp, depth);
    std::string_view directories = search_path(envp);
    while (true) {
        const std::size_t colon = directories.find(':');
        std::string_view directory = directories.substr(0, colon);
        if (directory.empty()) directory = ".";
        std::string candidate(directory);
        candidate += '/';
        candidate += name;
        struct stat found {};
        if (::stat(candidate.c_str(), &found) == 0 && S_ISREG(found.st_mode) &&
            ::access(candidate.c_str(), X_OK) == 0) {
            return classify(candidate, self, envp, depth);
        }
        if (colon == directories.npos) return NextImage::kUnknown;
        directories.remove_prefix(colon + 1);
    }
}

NextImage classify(const std::string& path, const struct stat& self, char* const envp[],
                   int depth) {
    struct stat target {};
    if (::stat(path.c_str(), &target) != 0 || !S_ISREG(target.st_mode)) return NextImage::kUnknown;
    if (same_file(target, self)) return NextImage::kVztrace;
    if (::access(path.c_str(), X_OK) != 0 || depth > kInterpreterDepth) return NextImage::kUnknown;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NextImage::kUnknown;  // execute-only: nothing to read it by
    char head[kLineBytes];
    ssize_t got = 0;
    do {
        got = ::read(fd, head, sizeof head);
    } while (got < 0 && errno == EINTR);
    ::close(fd);
    if (got < 0) return NextImage::kUnknown;
    const std::string_view bytes(head, static_cast<std::size_t>(got));
    if (bytes.starts_with(ELFMAG)) {
        return runs_here(bytes) ? NextImage::kAnotherProgram : NextImage::kUnknown;
    }
    if (!bytes.starts_with("#!")) return NextImage::kUnknown;  // the exec fails (ENOEXEC)
    std::string_view line = bytes.substr(2);
    const std::size_t end = line.find('\n');
    if (end == line.npos) return NextImage::kUnknown;  // longer than the kernel reads
    line = line.substr(0, end);
    const auto blank = [](char c) { return c == ' ' || c == '\t'; };
    while (!line.empty() && blank(line.front())) line.remove_prefix(1);
    // The kernel keeps a carriage return (a script saved with CRLF): "/bin/sh\r" is found
    // nowhere, and the exec fails.
    while (!line.empty() && blank(line.back())) line.remove_suffix(1);
    std::size_t split = 0;
    while (split < line.size() && !blank(line[split])) ++split;
    const std::string_view interpreter = line.substr(0, split);
    std::string_view argument = line.substr(split);
    while (!argument.empty() && blank(argument.front())) argument.remove_prefix(1);
    if (interpreter.empty()) return NextImage::kUnknown;
    const std::size_t slash = interpreter.rfind('/');
    const std::string_view base =
        slash == interpreter.npos ? interpreter : interpreter.substr(slash + 1);
    const NextImage direct = classify(std::string(interpreter), self, envp, depth + 1);
    if (base == "env" && direct == NextImage::kAnotherProgram) {
        return through_env(argument, self, envp, depth + 1);
    }
    return direct;
}

}  // namespace

NextImage next_image(const char* path, const struct stat& self, char* const envp[]) {
    if (path == nullptr) return NextImage::kUnknown;
    return classify(path, self, envp, 0);
}

}  // namespace vztrace::tracer
