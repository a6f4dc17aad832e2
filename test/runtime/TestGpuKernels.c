/* Test fixture standing in for a CUDA code object, so the runtime's device memory
 * protocol (runtime/src/Device.h) runs without a GPU: the Halide runtime functions the
 * runtime calls, over "device memory" that is host memory of its own (filled with
 * 0xcd when allocated, so bytes never uploaded show), and kernels that behave as
 * Halide's pipelines do: a GPU stage makes its buffers current on the device
 * (halide_copy_to_device), computes there and marks its output device-dirty; a host
 * stage makes them current on the host (halide_copy_to_host) and marks its output
 * host-dirty. The Halide functions follow HalideRuntime.h's contracts and stop the
 * process, naming the broken rule, where Halide's would fail or abort. Halide's CUDA
 * context and stream (HalideRuntimeCuda.h) are fakes the fake cuBLAS checks for. */
#include "FakeCuda.h"
#include "TestMatmul.h"

#include <HalideRuntime.h>

#include <stdbool.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct halide_device_interface_t fake_cuda;
static halide_error_handler_t error_handler;
static int allocations, wrapped; /* live, checked at halide_device_release */

const struct halide_device_interface_t *halide_cuda_device_interface(void) { return &fake_cuda; }

halide_error_handler_t halide_set_error_handler(halide_error_handler_t handler) {
  halide_error_handler_t old = error_handler;
  error_handler = handler;
  return old;
}

void halide_set_gpu_device(int n) { (void)n; }

static void broken(const char *rule) {
  fprintf(stderr, "TestGpuKernels: the runtime broke a Halide rule: %s\n", rule);
  abort();
}

static int failed(const char *message) {
  if (error_handler)
    error_handler(NULL, message);
  return -1;
}

static int host_dirty(const struct halide_buffer_t *b) {
  return (b->flags & halide_buffer_flag_host_dirty) != 0;
}
static int device_dirty(const struct halide_buffer_t *b) {
  return (b->flags & halide_buffer_flag_device_dirty) != 0;
}

/* halide_buffer_t::size_in_bytes for non-negative strides. */
static size_t size_in_bytes(const struct halide_buffer_t *b) {
  size_t last = 0;
  for (int i = 0; i < b->dimensions; ++i)
    last += (size_t)b->dim[i].stride * (size_t)(b->dim[i].extent - 1);
  return (last + 1) * (size_t)((b->type.bits + 7) / 8);
}

static void validate(const struct halide_buffer_t *b) {
  if ((b->device != 0) != (b->device_interface != NULL))
    broken("device and device_interface are set together");
  if (host_dirty(b) && device_dirty(b))
    broken("a buffer is never dirty on both sides");
}

int halide_device_malloc(void *user_context, struct halide_buffer_t *b,
                         const struct halide_device_interface_t *interface) {
  (void)user_context;
  validate(b);
  if (interface != &fake_cuda)
    broken("halide_device_malloc gets the code object's device interface");
  if (b->device)
    return 0;
  size_t size = size_in_bytes(b);
  void *memory = malloc(size);
  if (!memory)
    return failed("fake CUDA: out of memory");
  memset(memory, 0xcd, size);
  b->device = (uint64_t)(uintptr_t)memory;
  b->device_interface = interface;
  ++allocations;
  return 0;
}

int halide_device_free(void *user_context, struct halide_buffer_t *b) {
  (void)user_context;
  validate(b);
  if (!b->device)
    return 0;
  free((void *)(uintptr_t)b->device);
  b->device = 0;
  b->device_interface = NULL;
  b->flags &= ~(uint64_t)halide_buffer_flag_device_dirty;
  --allocations;
  return 0;
}

int halide_device_wrap_native(void *user_context, struct halide_buffer_t *b, uint64_t handle,
                              const struct halide_device_interface_t *interface) {
  (void)user_context;
  validate(b);
  if (b->device)
    broken("halide_device_wrap_native on a buffer that already has device memory");
  if (interface != &fake_cuda || !handle)
    broken("halide_device_wrap_native gets a handle and the device interface");
  b->device = handle;
  b->device_interface = interface;
  ++wrapped;
  return 0;
}

int halide_device_detach_native(void *user_context, struct halide_buffer_t *b) {
  (void)user_context;
  validate(b);
  if (!b->device)
    return 0;
  b->device = 0;
  b->device_interface = NULL;
  --wrapped;
  return 0;
}

int halide_copy_to_device(void *user_context, struct halide_buffer_t *b,
                          const struct halide_device_interface_t *interface) {
  validate(b);
  if (!b->device && halide_device_malloc(user_context, b, interface))
    return -1;
  if (b->device_interface != interface)
    broken("halide_copy_to_device keeps the buffer's device interface");
  if (host_dirty(b)) {
    if (!b->host)
      broken("a host-dirty buffer has host memory");
    memcpy((void *)(uintptr_t)b->device, b->host, size_in_bytes(b));
    b->flags &= ~(uint64_t)halide_buffer_flag_host_dirty;
  }
  return 0;
}

int halide_copy_to_host(void *user_context, struct halide_buffer_t *b) {
  (void)user_context;
  validate(b);
  if (!device_dirty(b))
    return 0;
  if (!b->device || !b->host)
    broken("a device-dirty buffer has device and host memory");
  memcpy(b->host, (const void *)(uintptr_t)b->device, size_in_bytes(b));
  b->flags &= ~(uint64_t)halide_buffer_flag_device_dirty;
  return 0;
}

int halide_device_sync(void *user_context, struct halide_buffer_t *b) {
  (void)user_context;
  validate(b);
  if (!b->device_interface)
    return failed("fake CUDA: halide_device_sync of a buffer without a device interface");
  return 0;
}

void halide_device_release(void *user_context, const struct halide_device_interface_t *interface) {
  (void)user_context;
  if (interface != &fake_cuda)
    broken("halide_device_release gets the device interface");
  if (allocations || wrapped)
    broken("halide_device_release comes after every allocation is freed and every wrapped "
           "buffer detached");
}

/* Halide's CUDA context is held from acquire to release (a lock in Halide's runtime):
 * acquiring it again before the release would deadlock there. */
static struct kiln_fake_cuda_context context = {KILN_FAKE_HALIDE_CONTEXT, 0};
static struct kiln_fake_cuda_stream stream = {KILN_FAKE_HALIDE_STREAM};

int halide_cuda_acquire_context(void *user_context, void **ctx, bool create) {
  (void)user_context;
  (void)create;
  if (context.acquired)
    broken("halide_cuda_acquire_context is not called again before its release");
  context.acquired = 1;
  *ctx = &context;
  return 0;
}

int halide_cuda_release_context(void *user_context) {
  (void)user_context;
  if (!context.acquired)
    broken("halide_cuda_release_context follows halide_cuda_acquire_context");
  context.acquired = 0;
  return 0;
}

int halide_cuda_get_stream(void *user_context, void *ctx, void **out) {
  (void)user_context;
  if (ctx != &context || !context.acquired)
    broken("halide_cuda_get_stream gets the context acquired");
  *out = &stream;
  return 0;
}

/* ---- kernels -------------------------------------------------------------------- */

static int64_t dense_f32_elements(const struct halide_buffer_t *b) {
  if (b->type.code != halide_type_float || b->type.bits != 32)
    return -1;
  int64_t elements = 1;
  for (int i = 0; i < b->dimensions; ++i) {
    if (b->dim[i].min != 0 || b->dim[i].stride != elements)
      return -1;
    elements *= b->dim[i].extent;
  }
  return elements;
}

static float *on_device(struct halide_buffer_t *b) {
  return halide_copy_to_device(NULL, b, &fake_cuda) ? NULL : (float *)(uintptr_t)b->device;
}

static float *on_host(struct halide_buffer_t *b) {
  return halide_copy_to_host(NULL, b) ? NULL : (float *)b->host;
}

/* out = a + b, a GPU stage. */
int add_argv(void **args) {
  struct halide_buffer_t *a = args[0], *b = args[1], *out = args[2];
  int64_t n = dense_f32_elements(out);
  if (n < 0 || dense_f32_elements(a) != n || dense_f32_elements(b) != n)
    return failed("add: not three dense f32 buffers of one size");
  const float *x = on_device(a), *y = on_device(b);
  float *z = on_device(out);
  if (!x || !y || !z)
    return -1;
  for (int64_t i = 0; i < n; ++i)
    z[i] = x[i] + y[i];
  out->flags |= halide_buffer_flag_device_dirty;
  return 0;
}

/* out = a + b, a stage Halide runs on the host. */
int host_add_argv(void **args) {
  struct halide_buffer_t *a = args[0], *b = args[1], *out = args[2];
  int64_t n = dense_f32_elements(out);
  if (n < 0 || dense_f32_elements(a) != n || dense_f32_elements(b) != n)
    return failed("host_add: not three dense f32 buffers of one size");
  const float *x = on_host(a), *y = on_host(b);
  float *z = on_host(out);
  if (!x || !y || !z)
    return -1;
  for (int64_t i = 0; i < n; ++i)
    z[i] = x[i] + y[i];
  out->flags |= halide_buffer_flag_host_dirty;
  return 0;
}

/* out = 2 * in, a GPU stage. */
int scale2_argv(void **args) {
  struct halide_buffer_t *in = args[0], *out = args[1];
  int64_t n = dense_f32_elements(out);
  if (n < 0 || dense_f32_elements(in) != n)
    return failed("scale2: not two dense f32 buffers of one size");
  const float *x = on_device(in);
  float *y = on_device(out);
  if (!x || !y)
    return -1;
  for (int64_t i = 0; i < n; ++i)
    y[i] = 2 * x[i];
  out->flags |= halide_buffer_flag_device_dirty;
  return 0;
}

/* out = in + 1, a GPU stage; in place when both are one state buffer. */
int increment_argv(void **args) {
  struct halide_buffer_t *in = args[0], *out = args[1];
  int64_t n = dense_f32_elements(out);
  if (n < 0 || dense_f32_elements(in) != n)
    return failed("increment: not two dense f32 buffers of one size");
  const float *x = on_device(in);
  float *y = on_device(out);
  if (!x || !y)
    return -1;
  for (int64_t i = 0; i < n; ++i)
    y[i] = x[i] + 1;
  out->flags |= halide_buffer_flag_device_dirty;
  return 0;
}

/* The GEMMs of TestMatmul.h as GPU stages: C = A . B, and C = A . B^T (matmul_bt). */
static int matmul(void **args, int transpose_b) {
  struct halide_buffer_t *a = args[0], *b = args[1], *c = args[2];
  if (dense_f32_elements(a) < 0 || dense_f32_elements(b) < 0 || dense_f32_elements(c) < 0)
    return failed("matmul: not three dense f32 buffers");
  const float *x = on_device(a), *y = on_device(b);
  float *z = on_device(c);
  if (!x || !y || !z)
    return -1;
  if (kiln_test_matmul(a, b, c, transpose_b, x, y, z))
    return failed("matmul: the shapes do not fit together");
  c->flags |= halide_buffer_flag_device_dirty;
  return 0;
}
int matmul_argv(void **args) { return matmul(args, 0); }
int matmul_bt_argv(void **args) { return matmul(args, 1); }

static const struct halide_filter_argument_t unnamed_arguments[3];
#define KILN_TEST_METADATA(kernel, count)                                                   \
  const struct halide_filter_metadata_t *kernel##_metadata(void) {                         \
    static const struct halide_filter_metadata_t metadata = {                              \
        1, count, unnamed_arguments, "x86-64-linux-cuda-cuda_capability_80", #kernel};     \
    return &metadata;                                                                       \
  }
KILN_TEST_METADATA(add, 3)
KILN_TEST_METADATA(host_add, 3)
KILN_TEST_METADATA(scale2, 2)
KILN_TEST_METADATA(increment, 2)
KILN_TEST_METADATA(matmul, 3)
KILN_TEST_METADATA(matmul_bt, 3)
