# Build hygiene shared by every kiln target: ccache, a fast linker, and warnings as
# errors for kiln's own code (third-party headers are included as SYSTEM).

find_program(KILN_CCACHE ccache)
if(KILN_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_C_COMPILER_LAUNCHER ${KILN_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${KILN_CCACHE})
endif()

# lld links MLIR tools ~10x faster than GNU ld.
find_program(KILN_LLD ld.lld PATHS /usr/lib/llvm-22/bin NO_DEFAULT_PATH)
if(KILN_LLD)
  get_filename_component(KILN_LLD_DIR ${KILN_LLD} DIRECTORY)
  add_link_options(-B${KILN_LLD_DIR} -fuse-ld=lld)
endif()

option(KILN_WERROR "Treat warnings in kiln's own code as errors" ON)

# kiln_target_warnings(<target>): the warning policy for a kiln-owned target.
function(kiln_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  if(KILN_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# Sanitized builds (scripts/test.sh --sanitize): a -fsanitize= list ("address,undefined"
# or "thread") for everything the build compiles and links, every report fatal. Such a
# build is for the runtime side (runtime, readers, tokenizers, the tools linking only
# those, and their tests); see docs/development.md.
set(KILN_SANITIZE "" CACHE STRING "-fsanitize= list for a sanitized build, e.g. address,undefined")
if(KILN_SANITIZE)
  add_compile_options(-fsanitize=${KILN_SANITIZE} -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${KILN_SANITIZE})
endif()
