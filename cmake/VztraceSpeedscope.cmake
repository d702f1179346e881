# speedscope's static build, the offline viewer of `vztrace view`: the npm package's
# dist/release (index.html and its assets, about 1 MB, MIT), fetched by `npm pack` at build
# time into <build>/speedscope and installed to share/vztrace/speedscope. The tarball is
# checked against a pinned SHA-512. Without npm the build goes on and `vztrace view` says
# how to get the viewer.
#
# Included from the top CMakeLists.txt it defines VZTRACE_SPEEDSCOPE_DIR and the target
# vztrace_speedscope (when npm is found); run with `cmake -P` it is the build step itself.
set(VZTRACE_SPEEDSCOPE_VERSION 1.25.0)
set(VZTRACE_SPEEDSCOPE_SHA512
    7297fd1d64d97f58a32d7049ae4f3b55eff9e2d9d8c7aae57f48144e1be7de8a24ea1eb784b5d539088c7f8e0f4fe5e8579d3770f7ef7e24f980fe6fa23a7a02)

if(CMAKE_SCRIPT_MODE_FILE)
  # The build step: NPM, DEST and STAMP come from the command line.
  set(work "${DEST}.download")
  file(REMOVE_RECURSE "${work}" "${DEST}")
  file(MAKE_DIRECTORY "${work}")
  execute_process(
    COMMAND "${NPM}" pack "speedscope@${VZTRACE_SPEEDSCOPE_VERSION}" --silent
            --pack-destination "${work}"
    WORKING_DIRECTORY "${work}" RESULT_VARIABLE failed OUTPUT_QUIET ERROR_VARIABLE error)
  set(tarball "${work}/speedscope-${VZTRACE_SPEEDSCOPE_VERSION}.tgz")
  if(failed OR NOT EXISTS "${tarball}")
    message(FATAL_ERROR "npm pack speedscope@${VZTRACE_SPEEDSCOPE_VERSION} failed: ${error} "
                        "(configure with -DVZTRACE_SPEEDSCOPE=OFF to build without the "
                        "offline viewer)")
  endif()
  file(SHA512 "${tarball}" sha512)
  if(NOT sha512 STREQUAL VZTRACE_SPEEDSCOPE_SHA512)
    message(FATAL_ERROR "${tarball} is not the speedscope ${VZTRACE_SPEEDSCOPE_VERSION} "
                        "vztrace pins (SHA-512 ${sha512})")
  endif()
  file(ARCHIVE_EXTRACT INPUT "${tarball}" DESTINATION "${work}")
  file(COPY "${work}/package/dist/release/" DESTINATION "${DEST}")
  file(COPY "${work}/package/LICENSE" DESTINATION "${DEST}")
  file(REMOVE_RECURSE "${work}")
  file(WRITE "${STAMP}" "speedscope ${VZTRACE_SPEEDSCOPE_VERSION}\n")
  return()
endif()

option(VZTRACE_SPEEDSCOPE "Fetch speedscope (npm) for `vztrace view`'s offline viewer" ON)
unset(VZTRACE_SPEEDSCOPE_DIR)
if(VZTRACE_SPEEDSCOPE)
  find_program(VZTRACE_NPM npm)
  if(VZTRACE_NPM)
    set(VZTRACE_SPEEDSCOPE_DIR "${PROJECT_BINARY_DIR}/speedscope")
    set(_vz_stamp "${PROJECT_BINARY_DIR}/speedscope.stamp")
    add_custom_command(
      OUTPUT "${_vz_stamp}"
      COMMAND "${CMAKE_COMMAND}" "-DNPM=${VZTRACE_NPM}" "-DDEST=${VZTRACE_SPEEDSCOPE_DIR}"
              "-DSTAMP=${_vz_stamp}" -P "${CMAKE_CURRENT_LIST_FILE}"
      DEPENDS "${CMAKE_CURRENT_LIST_FILE}"
      COMMENT "Fetching speedscope ${VZTRACE_SPEEDSCOPE_VERSION} (npm) for vztrace view"
      VERBATIM)
    add_custom_target(vztrace_speedscope ALL DEPENDS "${_vz_stamp}")
    install(DIRECTORY "${VZTRACE_SPEEDSCOPE_DIR}/" DESTINATION share/vztrace/speedscope)
  else()
    message(STATUS "vztrace: npm not found: `vztrace view` is built without its offline "
                   "viewer (speedscope); install nodejs and npm and reconfigure to get it")
  endif()
endif()
