# vztrace's modules: shared objects only some subcommands load (tracer/format/module_loader.hpp
# finds them), built beside the executable and installed in lib/vztrace/.
#
#   vztrace_module(TARGET FILE_NAME SOURCES...)
function(vztrace_module target file_name)
  add_library(${target} MODULE ${ARGN})
  target_include_directories(${target} PRIVATE "${PROJECT_SOURCE_DIR}")
  target_compile_features(${target} PRIVATE cxx_std_20)
  target_link_libraries(${target} PRIVATE vztrace_warnings)
  set_target_properties(${target} PROPERTIES
                        PREFIX "" OUTPUT_NAME "${file_name}" SUFFIX ".so"
                        CXX_VISIBILITY_PRESET hidden
                        LIBRARY_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/launcher")
  install(TARGETS ${target} LIBRARY DESTINATION lib/vztrace)
endfunction()
