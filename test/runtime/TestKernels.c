/* Test fixture standing in for compiler output: a few kernels with Halide's AOT argv
 * ABI (one halide_buffer_t* per argument), built into the code object that test
 * artifacts embed. Each checks the buffers it is given and returns non-zero if they
 * are not what the runtime promised. */
#define _POSIX_C_SOURCE 199309L /* nanosleep */
#include "TestGate.h"
#include "TestMatmul.h"

#include <HalideRuntime.h>

#include <stdint.h>
#include <time.h>

static int threads_set;

/* Halide's runtime exports this; the kiln runtime calls it after loading. */
int halide_set_num_threads(int n) {
  int old = threads_set;
  threads_set = n;
  return old;
}

/* Dense f32 with Halide's innermost-first dimensions (dim[0].stride == 1). */
static int64_t dense_f32_elements(const halide_buffer_t *b) {
  if (b->type.code != halide_type_float || b->type.bits != 32 || !b->host)
    return -1;
  int64_t elements = 1;
  for (int i = 0; i < b->dimensions; ++i) {
    if (b->dim[i].min != 0 || b->dim[i].stride != elements)
      return -1;
    elements *= b->dim[i].extent;
  }
  return elements;
}

int add_argv(void **args) {
  const halide_buffer_t *a = args[0], *b = args[1], *out = args[2];
  int64_t n = dense_f32_elements(out);
  if (n < 0 || dense_f32_elements(a) != n || dense_f32_elements(b) != n)
    return -1;
  const float *x = (const float *)a->host, *y = (const float *)b->host;
  float *z = (float *)out->host;
  for (int64_t i = 0; i < n; ++i)
    z[i] = x[i] + y[i];
  return 0;
}

int scale2_argv(void **args) {
  const halide_buffer_t *in = args[0], *out = args[1];
  int64_t n = dense_f32_elements(out);
  if (n < 0 || dense_f32_elements(in) != n)
    return -1;
  for (int64_t i = 0; i < n; ++i)
    ((float *)out->host)[i] = 2.0f * ((const float *)in->host)[i];
  return 0;
}

/* out[c][r] = in[r][c], addressed through the dimensions the runtime built. */
int transpose_argv(void **args) {
  const halide_buffer_t *in = args[0], *out = args[1];
  if (dense_f32_elements(in) < 0 || dense_f32_elements(out) < 0 || in->dimensions != 2 ||
      out->dimensions != 2 || in->dim[0].extent != out->dim[1].extent ||
      in->dim[1].extent != out->dim[0].extent)
    return -1;
  for (int32_t r = 0; r < in->dim[1].extent; ++r)
    for (int32_t c = 0; c < in->dim[0].extent; ++c)
      ((float *)out->host)[c * out->dim[1].stride + r * out->dim[0].stride] =
          ((const float *)in->host)[r * in->dim[1].stride + c * in->dim[0].stride];
  return 0;
}

/* out (i32[5]) = type code, bits, dimensions, dim[0].extent, dim[0].stride of args[0]. */
int describe_argv(void **args) {
  const halide_buffer_t *in = args[0], *out = args[1];
  int32_t *o = (int32_t *)out->host;
  o[0] = in->type.code;
  o[1] = in->type.bits;
  o[2] = in->dimensions;
  o[3] = in->dimensions ? in->dim[0].extent : 0;
  o[4] = in->dimensions ? in->dim[0].stride : 0;
  return 0;
}

/* out (i32[1]) = the thread count last given to halide_set_num_threads. */
int threads_argv(void **args) {
  const halide_buffer_t *out = args[0];
  *(int32_t *)out->host = threads_set;
  return 0;
}

/* The GEMMs of TestMatmul.h: C = A . B, and C = A . B^T (matmul_bt). */
static int matmul(void **args, int transpose_b) {
  const halide_buffer_t *a = args[0], *b = args[1], *c = args[2];
  if (dense_f32_elements(a) < 0 || dense_f32_elements(b) < 0 || dense_f32_elements(c) < 0)
    return -1;
  return kiln_test_matmul(a, b, c, transpose_b, (const float *)a->host, (const float *)b->host,
                          (float *)c->host);
}
int matmul_argv(void **args) { return matmul(args, 0); }
int matmul_bt_argv(void **args) { return matmul(args, 1); }

int fail_argv(void **args) {
  (void)args;
  return -3;
}

/* A kernel as kiln compiled them before the loader checked argument counts: no
 * `<name>_metadata()`. */
int unchecked_argv(void **args) { return fail_argv(args); }

/* Halide's `<name>_metadata()`, which the loader checks each kernel's argument count
 * against: only num_arguments is read. "fail" comes in every arity a test needs
 * (fail1 ... fail8, each the same function). */
static const struct halide_filter_argument_t unnamed_arguments[8];
#define KILN_TEST_METADATA(kernel, count)                                                   \
  const struct halide_filter_metadata_t *kernel##_metadata(void) {                         \
    static const struct halide_filter_metadata_t metadata = {1, count, unnamed_arguments,  \
                                                             "x86-64-linux", #kernel};     \
    return &metadata;                                                                       \
  }
#define KILN_TEST_FAIL(count)                                                               \
  int fail##count##_argv(void **args) { return fail_argv(args); }                           \
  KILN_TEST_METADATA(fail##count, count)
KILN_TEST_METADATA(add, 3)
KILN_TEST_METADATA(scale2, 2)
KILN_TEST_METADATA(transpose, 2)
KILN_TEST_METADATA(matmul, 3)
KILN_TEST_METADATA(matmul_bt, 3)
KILN_TEST_METADATA(describe, 2)
KILN_TEST_METADATA(threads, 1)
KILN_TEST_METADATA(fail, 1)
KILN_TEST_FAIL(1)
KILN_TEST_FAIL(2)
KILN_TEST_FAIL(3)
KILN_TEST_FAIL(4)
KILN_TEST_FAIL(5)
KILN_TEST_FAIL(6)
KILN_TEST_FAIL(7)
KILN_TEST_FAIL(8)

/* args[0] (u64[1]) is the address of a kiln_test_gate in the test's memory: marks it
 * entered and returns once the test releases it, or -4 after 10 s (a test that forgot to
 * release fails instead of hanging). */
int wait_argv(void **args) {
  const halide_buffer_t *in = args[0];
  kiln_test_gate *gate = (kiln_test_gate *)(uintptr_t) * (const uint64_t *)in->host;
  __atomic_store_n(&gate->entered, 1, __ATOMIC_RELEASE);
  struct timespec pause = {0, 100000};
  for (int waited = 0; waited < 100000; ++waited) {
    if (__atomic_load_n(&gate->released, __ATOMIC_ACQUIRE))
      return 0;
    nanosleep(&pause, NULL);
  }
  return -4;
}
KILN_TEST_METADATA(wait, 2)
