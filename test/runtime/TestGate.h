/* A gate between a test and the `wait` test kernel (TestKernels.c): the kernel sets
 * `entered` and spins until the test sets `released`, so a test can call into a session
 * while one of its runs is certainly in progress. Accessed with __atomic builtins from
 * C (the kernel) and C++ (the test) alike. */
#ifndef KILN_TEST_RUNTIME_TESTGATE_H
#define KILN_TEST_RUNTIME_TESTGATE_H

typedef struct kiln_test_gate {
  int entered;
  int released;
} kiln_test_gate;

#endif /* KILN_TEST_RUNTIME_TESTGATE_H */
