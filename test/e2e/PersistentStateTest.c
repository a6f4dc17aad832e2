/* Persistent state end to end: test/e2e/Inputs/state.mlir compiled by kiln-compile; three
 * runs of @bump accumulate into the state, which a session of @read created with
 * kiln_session_create_sharing_state sees; a fresh session starts from zero. */
#include "CheckStatus.h"

#include <stdio.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s state.kiln\n", argv[0]);
    return 2;
  }
  kiln_runtime *runtime;
  kiln_module *module;
  kiln_session *bump, *read, *fresh;
  size_t bumpEntry, readEntry;
  CHECK(kiln_runtime_create(NULL, &runtime));
  CHECK(kiln_module_load_file(runtime, argv[1], &module));
  CHECK(kiln_module_find_entry_point(module, "bump", &bumpEntry));
  CHECK(kiln_module_find_entry_point(module, "read", &readEntry));
  CHECK(kiln_session_create(module, bumpEntry, &bump));
  CHECK(kiln_session_create_sharing_state(module, readEntry, bump, &read));
  CHECK(kiln_session_create(module, readEntry, &fresh));
  float x[4] = {1, 2, 3, 4}, y[4], shared[4], own[4];
  CHECK(kiln_session_set_input(bump, 0, x, sizeof x));
  for (int i = 0; i < 3; ++i)
    CHECK(kiln_session_run(bump));
  CHECK(kiln_session_copy_output(bump, 0, y, sizeof y));
  CHECK(kiln_session_run(read));
  CHECK(kiln_session_copy_output(read, 0, shared, sizeof shared));
  CHECK(kiln_session_run(fresh));
  CHECK(kiln_session_copy_output(fresh, 0, own, sizeof own));
  int failures = 0;
  for (int i = 0; i < 4; ++i) {
    float state = 3 * x[i]; /* small integers: exact in f32 */
    if (shared[i] != state || y[i] != state * state || own[i] != 0) {
      fprintf(stderr, "element %d: state %g (expected %g), y %g (expected %g), fresh %g\n", i,
              shared[i], state, y[i], state * state, own[i]);
      ++failures;
    }
  }
  kiln_session_release(fresh);
  kiln_session_release(read);
  kiln_session_release(bump);
  kiln_module_release(module);
  kiln_runtime_release(runtime);
  printf(failures ? "FAIL\n" : "1 passed, 0 failed\n");
  return failures != 0;
}
