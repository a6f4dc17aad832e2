# cmake -P script behind examples.embed_uses_the_installed_runtime: install the
# runtime component into a fresh prefix, build this example against it as a separate
# project, and run it on a freshly written test artifact and on a compiled model.
cmake_policy(VERSION 3.20)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE failed)
  if(failed)
    list(JOIN ARGN " " command)
    message(FATAL_ERROR "failed (${failed}): ${command}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
run(${CMAKE_COMMAND} --install ${KILN_BUILD_DIR} --component KilnRuntime
    --prefix ${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} -S ${EXAMPLE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
    -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${MAKE_ARTIFACT} ${CODE_OBJECT} ${WORK_DIR}/add.kiln)
execute_process(COMMAND ${WORK_DIR}/build/kiln-embed ${WORK_DIR}/add.kiln
  RESULT_VARIABLE failed OUTPUT_VARIABLE output)
message("${output}")
# main = a + b + bias with a = b = the pattern (k % 13) / 4 and bias = 100 + k.
set(expected "input 1 b: f32\\[2x3\\] \\(24 bytes\\).*\nsum: 100 101.5 103 104.5 106 107.5\n")
if(failed OR NOT output MATCHES "${expected}")
  message(FATAL_ERROR "kiln-embed failed (${failed}) or printed something else")
endif()

# The same program on real compiler output: the bundled MLP, whose softmax output has
# ten probabilities (the first eight are printed).
run(${KILN_COMPILE} ${MODEL} -o ${WORK_DIR}/mlp.kiln)
execute_process(COMMAND ${WORK_DIR}/build/kiln-embed ${WORK_DIR}/mlp.kiln
  RESULT_VARIABLE failed OUTPUT_VARIABLE output)
message("${output}")
set(number "[0-9.e+-]+")
set(expected "output 0 probs: f32\\[1x10\\] \\(40 bytes\\).*\nprobs:( ${number})+ \\.\\.\\.\n")
if(failed OR NOT output MATCHES "${expected}")
  message(FATAL_ERROR "kiln-embed on the compiled MLP failed (${failed}) or printed something else")
endif()
