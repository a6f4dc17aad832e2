# cmake -DLIBRARY=libkiln_runtime.so -P CheckRuntimeLibrary.cmake: fails unless the
# library's NEEDED entries are all system libraries (nothing from MLIR, LLVM, Halide,
# flatbuffers or xxhash) and every exported symbol is part of the kiln_ C API.
cmake_policy(VERSION 3.20)
find_program(READELF NAMES readelf llvm-readelf-22 REQUIRED)
find_program(NM NAMES nm llvm-nm-22 REQUIRED)

execute_process(COMMAND ${READELF} -d ${LIBRARY} OUTPUT_VARIABLE dynamic
  RESULT_VARIABLE failed)
if(failed)
  message(FATAL_ERROR "readelf -d ${LIBRARY} failed")
endif()
string(REGEX MATCHALL "Shared library: \\[[^]]+\\]" needed "${dynamic}")
set(allowed libc.so.6 libdl.so.2 libpthread.so.0 libm.so.6 libstdc++.so.6 libgcc_s.so.1)
foreach(entry ${needed})
  string(REGEX REPLACE "Shared library: \\[(.*)\\]" "\\1" lib "${entry}")
  message(STATUS "NEEDED ${lib}")
  if(lib MATCHES "MLIR|LLVM|Halide|flatbuffers|xxhash")
    message(FATAL_ERROR "${LIBRARY} depends on ${lib}")
  endif()
  if(NOT lib IN_LIST allowed)
    message(FATAL_ERROR "${LIBRARY} depends on ${lib}, which is not a system library")
  endif()
endforeach()

execute_process(COMMAND ${NM} -D --defined-only ${LIBRARY} OUTPUT_VARIABLE symbols
  RESULT_VARIABLE failed)
if(failed)
  message(FATAL_ERROR "nm -D ${LIBRARY} failed")
endif()
string(REPLACE "\n" ";" symbols "${symbols}")
foreach(line ${symbols})
  string(REGEX REPLACE "^[0-9a-f]* *[A-Za-z] " "" name "${line}")
  if(name AND NOT name MATCHES "^kiln_" AND NOT name MATCHES "^_(init|fini)$")
    message(FATAL_ERROR "${LIBRARY} exports ${name}, which is not part of the C API")
  endif()
endforeach()
message(STATUS "${LIBRARY}: system dependencies only, C API exports only")
