/* A stand-in for the CUDA driver (libcuda.so.1) with the five functions the runtime's
 * device probe calls, and the context stack cuBLAS calls are made in (the fake cuBLAS
 * reads it through kiln_fake_cuda_current_context), so kiln-device-tests runs without
 * a GPU. It describes fake GPUs:
 * device 0 is sm_80 with 108 multiprocessors, device 1 sm_86 with 84, device 2 sm_90
 * with 132. The environment shapes it at each call: KILN_FAKE_CUDA_DEVICES (how many,
 * 0 to 3; default 1) and KILN_FAKE_CUDA_INIT_ERROR (cuInit's result; default 0). */
#include <stdio.h>
#include <stdlib.h>

enum { kInvalidValue = 1, kInvalidDevice = 101, kInvalidContext = 201 };

static const struct {
  int major, minor, multiprocessors;
} kDevices[] = {{8, 0, 108}, {8, 6, 84}, {9, 0, 132}};

static int env(const char *name, int fallback) {
  const char *value = getenv(name);
  return value && *value ? atoi(value) : fallback;
}

static int count(void) {
  int n = env("KILN_FAKE_CUDA_DEVICES", 1);
  return n < 0 ? 0 : n > 3 ? 3 : n;
}

/* Lets a test check that this, not a real driver, is loaded. */
int kiln_fake_cuda_driver(void) { return 1; }

int cuInit(unsigned flags) { return flags ? kInvalidValue : env("KILN_FAKE_CUDA_INIT_ERROR", 0); }

int cuDeviceGetCount(int *n) {
  *n = count();
  return 0;
}

int cuDeviceGet(int *device, int ordinal) {
  if (ordinal < 0 || ordinal >= count())
    return kInvalidDevice;
  *device = ordinal;
  return 0;
}

int cuDeviceGetAttribute(int *value, int attribute, int device) {
  if (device < 0 || device >= count())
    return kInvalidDevice;
  switch (attribute) {
  case 16: /* CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT */
    *value = kDevices[device].multiprocessors;
    return 0;
  case 75: /* CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR */
    *value = kDevices[device].major;
    return 0;
  case 76: /* CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR */
    *value = kDevices[device].minor;
    return 0;
  }
  return kInvalidValue;
}

int cuDeviceGetName(char *name, int length, int device) {
  if (device < 0 || device >= count())
    return kInvalidDevice;
  snprintf(name, (size_t)length, "kiln fake GPU %d", device);
  return 0;
}

/* Each thread's stack of current contexts, as cuCtxPushCurrent keeps it. */
static _Thread_local void *contexts[8];
static _Thread_local int depth;

int cuCtxPushCurrent_v2(void *context) {
  if (!context || depth == 8)
    return kInvalidContext;
  contexts[depth++] = context;
  return 0;
}

int cuCtxPopCurrent_v2(void **context) {
  if (depth == 0)
    return kInvalidContext;
  --depth;
  if (context)
    *context = contexts[depth];
  return 0;
}

void *kiln_fake_cuda_current_context(void) { return depth ? contexts[depth - 1] : NULL; }
