# Third-party libraries, all from Debian packages (see .ci/install-deps).
#
# Every shared library the executable needs is loaded and relocated at each start of a
# traced program, before python's own start-up: vztrace links what it can into itself (fmt
# built from its headers, zlib and libdeflate from their static archives where the system
# has them) and keeps the rest in modules that only some subcommands load
# (tracer/format/module_loader.hpp). bench/README.md ("Start-up") has the numbers.

# vztrace::NAME: the static archive ARCHIVE where the system has one, else SHARED_TARGET.
function(vztrace_prefer_archive name archive shared_target include_dirs)
  find_library(VZTRACE_${name}_ARCHIVE NAMES ${archive})
  add_library(vztrace::${name} INTERFACE IMPORTED GLOBAL)
  if(VZTRACE_${name}_ARCHIVE)
    target_include_directories(vztrace::${name} INTERFACE ${include_dirs})
    target_link_libraries(vztrace::${name} INTERFACE "${VZTRACE_${name}_ARCHIVE}")
  else()
    target_link_libraries(vztrace::${name} INTERFACE ${shared_target})
  endif()
endfunction()

# fmt: Debian ships it as a shared library and as headers. Header-only mode costs about 4 s
# of compiling per source file that includes it; its compiled part is built once instead.
find_package(fmt REQUIRED)
add_library(vztrace_fmt STATIC "${CMAKE_CURRENT_LIST_DIR}/fmt_compiled.cpp")
target_compile_features(vztrace_fmt PUBLIC cxx_std_20)
target_include_directories(vztrace_fmt SYSTEM
                           PUBLIC $<TARGET_PROPERTY:fmt::fmt,INTERFACE_INCLUDE_DIRECTORIES>)
set_target_properties(vztrace_fmt PROPERTIES POSITION_INDEPENDENT_CODE ON)
add_library(vztrace::fmt ALIAS vztrace_fmt)
find_package(CLI11 REQUIRED)
find_package(ZLIB REQUIRED)
vztrace_prefer_archive(zlib libz.a ZLIB::ZLIB "${ZLIB_INCLUDE_DIRS}")
find_package(Threads REQUIRED)
find_package(simdjson REQUIRED)  # the JSON traces `vztrace report` reads
if(VZTRACE_BUILD_TESTS)
  find_package(Catch2 REQUIRED)
endif()
# libdeflate: Perfetto's compressed packets (zlib format) at two to three times zlib's
# speed at the same level, so --compress keeps up with the program.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBDEFLATE REQUIRED IMPORTED_TARGET libdeflate)
vztrace_prefer_archive(libdeflate libdeflate.a PkgConfig::LIBDEFLATE "${LIBDEFLATE_INCLUDE_DIRS}")
# RE2: --match of report and diff; linear-time matching, no recursion (std::regex overflowed
# the stack on long names). Linked in from its archive, as the others.
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)
vztrace_prefer_archive(re2 libre2.a PkgConfig::RE2 "${RE2_INCLUDE_DIRS}")
# cpp-httplib: the local server of `vztrace view` (and the tests' client). Debian builds it
# as a library with TLS, zlib and brotli: its pkg-config flags must match the header's.
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
# toml++: [tool.vztrace] of pyproject.toml and --config files. Used header-only (Debian's
# package also ships a shared library; the header alone keeps vztrace free of it).
find_path(VZTRACE_TOMLPLUSPLUS_INCLUDE_DIR toml++/toml.h REQUIRED)
add_library(vztrace::tomlplusplus INTERFACE IMPORTED)
target_include_directories(vztrace::tomlplusplus SYSTEM INTERFACE "${VZTRACE_TOMLPLUSPLUS_INCLUDE_DIR}")
target_compile_definitions(vztrace::tomlplusplus INTERFACE TOML_HEADER_ONLY=1)
