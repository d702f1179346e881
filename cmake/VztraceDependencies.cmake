# Third-party libraries, all from Debian packages (see .ci/install-deps).
find_package(fmt REQUIRED)
find_package(CLI11 REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)
find_package(simdjson REQUIRED)  # the JSON traces `vztrace report` reads
if(VZTRACE_BUILD_TESTS)
  find_package(Catch2 REQUIRED)
endif()
# libdeflate: Perfetto's compressed packets (zlib format) at two to three times zlib's
# speed at the same level, so --compress keeps up with the program.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBDEFLATE REQUIRED IMPORTED_TARGET libdeflate)
# cpp-httplib: the local server of `vztrace view` (and the tests' client). Debian builds it
# as a library with TLS, zlib and brotli: its pkg-config flags must match the header's.
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
# toml++: [tool.vztrace] of pyproject.toml and --config files. Used header-only (Debian's
# package also ships a shared library; the header alone keeps vztrace free of it).
find_path(VZTRACE_TOMLPLUSPLUS_INCLUDE_DIR toml++/toml.h REQUIRED)
add_library(vztrace::tomlplusplus INTERFACE IMPORTED)
target_include_directories(vztrace::tomlplusplus SYSTEM INTERFACE "${VZTRACE_TOMLPLUSPLUS_INCLUDE_DIR}")
target_compile_definitions(vztrace::tomlplusplus INTERFACE TOML_HEADER_ONLY=1)
