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
