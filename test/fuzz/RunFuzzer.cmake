# cmake -P script behind the fuzz.* tests: runs FUZZER time-bounded from SEEDS (and
# EXTRA_SEEDS, a second folder, where given) in a fresh scratch corpus (so repeated runs
# do not pile up inputs); libFuzzer exits non-zero on any crash, leak, timeout or
# sanitizer report, and so does this script.
cmake_policy(VERSION 3.20)
file(REMOVE_RECURSE ${WORK_DIR}/corpus)
file(MAKE_DIRECTORY ${WORK_DIR}/corpus)
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1
    ${FUZZER} -max_total_time=20 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
    -artifact_prefix=${WORK_DIR}/crash- ${WORK_DIR}/corpus ${SEEDS} ${EXTRA_SEEDS}
  RESULT_VARIABLE failed)
if(failed)
  message(FATAL_ERROR "${FUZZER} failed (${failed}); the input is saved as ${WORK_DIR}/crash-*")
endif()
