# Chooses the CPython that vztrace embeds.
#
#   -DVZTRACE_PYTHON=/path/to/python3.X   (default: python3 on PATH)
#
# The interpreter is asked for its real sys.executable (this resolves pyenv shims and
# symlinks), then FindPython3 locates the headers and the shared libpython of exactly
# that interpreter. The binary links libpython with an RPATH, so no LD_LIBRARY_PATH.
set(VZTRACE_PYTHON "python3" CACHE STRING "Python interpreter whose libpython vztrace embeds")

find_program(_vz_python_program NAMES "${VZTRACE_PYTHON}" NO_CACHE)
if(NOT _vz_python_program)
  message(FATAL_ERROR "VZTRACE_PYTHON='${VZTRACE_PYTHON}' was not found")
endif()
execute_process(
  COMMAND "${_vz_python_program}" -I -c
    "import sys, sysconfig; print(sys.executable); print('%d.%d' % sys.version_info[:2]); print(sysconfig.get_config_var('Py_ENABLE_SHARED') or 0)"
  OUTPUT_VARIABLE _vz_python_info OUTPUT_STRIP_TRAILING_WHITESPACE
  RESULT_VARIABLE _vz_python_rc)
if(NOT _vz_python_rc EQUAL 0)
  message(FATAL_ERROR "cannot run '${_vz_python_program}' to query it")
endif()
string(REPLACE "\n" ";" _vz_python_info "${_vz_python_info}")
list(GET _vz_python_info 0 VZTRACE_PYTHON_EXECUTABLE)
list(GET _vz_python_info 1 VZTRACE_PYTHON_VERSION)
list(GET _vz_python_info 2 _vz_python_shared)
if(VZTRACE_PYTHON_VERSION VERSION_LESS 3.11 OR VZTRACE_PYTHON_VERSION VERSION_GREATER 3.13)
  message(FATAL_ERROR "vztrace supports CPython 3.11 to 3.13; '${VZTRACE_PYTHON_EXECUTABLE}' is ${VZTRACE_PYTHON_VERSION}")
endif()
set(VZTRACE_PYTHON_SHARED ${_vz_python_shared})
if(NOT _vz_python_shared)
  message(WARNING "${VZTRACE_PYTHON_EXECUTABLE} was not built with --enable-shared; "
                  "linking its static libpython")
endif()

set(Python3_EXECUTABLE "${VZTRACE_PYTHON_EXECUTABLE}")
set(Python3_FIND_STRATEGY LOCATION)
find_package(Python3 "${VZTRACE_PYTHON_VERSION}" EXACT REQUIRED COMPONENTS Interpreter Development.Embed)
message(STATUS "vztrace embeds Python ${Python3_VERSION}: ${Python3_EXECUTABLE} (${Python3_LIBRARIES})")

# Executables that link libpython keep its directory in their RPATH after install too.
set(CMAKE_INSTALL_RPATH_USE_LINK_PATH TRUE)
# The build tree uses that RPATH too: CMake would otherwise pad the build RPATH with an
# empty entry (room to rewrite it at install), and an empty entry means the current
# directory: vztrace run from a directory holding a libstdc++.so.6 would load it.
set(CMAKE_BUILD_WITH_INSTALL_RPATH TRUE)
