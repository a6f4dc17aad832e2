/* CHECK(call): for C tests of the runtime API — on a failed call, print the call and
 * the status message, and return 1 from the enclosing function. */
#ifndef KILN_TEST_RUNTIME_CHECKSTATUS_H
#define KILN_TEST_RUNTIME_CHECKSTATUS_H

#include <kiln/runtime.h>

#include <stdio.h>

#define CHECK(x)                                                                        \
  do {                                                                                  \
    kiln_status status = (x);                                                           \
    if (status) {                                                                       \
      fprintf(stderr, "%s: %s\n", #x, kiln_status_message(status));                    \
      return 1;                                                                         \
    }                                                                                   \
  } while (0)

#endif /* KILN_TEST_RUNTIME_CHECKSTATUS_H */
