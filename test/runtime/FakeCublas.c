/* A stand-in for cuBLAS (libcublas.so.13) with the five functions the runtime's CUDA
 * device calls, so kiln-device-tests runs library calls without a GPU. Its GEMM is
 * cuBLAS's documented one (cublasGemmStridedBatchedEx: column-major, op() by transa and
 * transb, leading dimensions, batch strides), computed on the fake code object's "device
 * pointers", which are host addresses. It checks what real cuBLAS relies on: its calls
 * come with Halide's CUDA context acquired and current (TestGpuKernels.c, the fake
 * driver's context stack), in the context the handle was made in, on Halide's stream;
 * it stops the process naming the broken rule where a real one would misbehave. The
 * environment shapes it at each call: KILN_FAKE_CUBLAS_CREATE_STATUS (what
 * cublasCreate_v2 returns; default 0) and KILN_FAKE_CUBLAS_STATUS (what the GEMM returns
 * instead of computing; default 0). kiln_fake_cublas_calls reports the GEMM calls. */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include "FakeCuda.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kSuccess = 0, kInvalidValue = 7, kNotSupported = 15 };
enum { kOpN = 0, kOpT = 1, kR32F = 0, kCompute32F = 68, kCompute32FFastTF32 = 77 };

struct handle {
  void *context; /* the one current at cublasCreate_v2 */
  void *stream;  /* cublasSetStream_v2's; NULL is the default stream */
};

static int calls, handles;
static struct kiln_fake_cublas_call last;

/* Lets a test check that this, not a real cuBLAS, is loaded. */
int kiln_fake_cublas(void) { return 1; }

/* The GEMM calls so far, and the last one's arguments into *out (when there was one). */
int kiln_fake_cublas_calls(struct kiln_fake_cublas_call *out) {
  if (calls && out)
    *out = last;
  return calls;
}

void kiln_fake_cublas_reset(void) { calls = 0; }

/* Handles created and not destroyed. */
int kiln_fake_cublas_handles(void) { return handles; }

static int env(const char *name) {
  const char *value = getenv(name);
  return value && *value ? atoi(value) : 0;
}

static void broken(const char *rule) {
  fprintf(stderr, "FakeCublas: the runtime broke a cuBLAS rule: %s\n", rule);
  abort();
}

/* The calling thread's current context, which must be Halide's, acquired. */
static void *halide_context(void) {
  void *(*current)(void) = (void *(*)(void))dlsym(RTLD_DEFAULT, "kiln_fake_cuda_current_context");
  struct kiln_fake_cuda_context *context = current ? current() : NULL;
  if (!context || strcmp(context->name, KILN_FAKE_HALIDE_CONTEXT) != 0 || !context->acquired)
    broken("cuBLAS is called with Halide's CUDA context acquired and current");
  return context;
}

static struct handle *in_its_context(void *handle) {
  struct handle *h = handle;
  if (!h || halide_context() != h->context)
    broken("a handle is used in the context it was created in");
  return h;
}

int cublasCreate_v2(void **handle) {
  void *context = halide_context();
  int status = env("KILN_FAKE_CUBLAS_CREATE_STATUS");
  if (status)
    return status;
  struct handle *h = calloc(1, sizeof *h);
  h->context = context;
  *handle = h;
  ++handles;
  return kSuccess;
}

int cublasDestroy_v2(void *handle) {
  free(in_its_context(handle));
  --handles;
  return kSuccess;
}

int cublasSetStream_v2(void *handle, void *stream) {
  in_its_context(handle)->stream = stream;
  return kSuccess;
}

int cublasGetVersion_v2(void *handle, int *version) {
  (void)handle;
  *version = 130000;
  return kSuccess;
}

/* An input as a TF32 tensor core reads it: 10 mantissa bits, rounded to nearest even. */
static float tf32(float value) {
  uint32_t bits;
  memcpy(&bits, &value, sizeof bits);
  bits = (bits + 0xfffu + ((bits >> 13) & 1u)) & ~0x1fffu;
  memcpy(&value, &bits, sizeof value);
  return value;
}

/* Element (i, j) of a column-major matrix with leading dimension ld, through op(). */
static float element(const float *matrix, int op, int ld, int i, int j) {
  return op == kOpN ? matrix[i + (int64_t)j * ld] : matrix[j + (int64_t)i * ld];
}

static int max1(int value) { return value > 1 ? value : 1; }

/* For each p < batchCount: C_p = alpha op(A_p) op(B_p) + beta C_p, with op(A_p) m x k,
 * op(B_p) k x n and C_p m x n, X_p at X + p * strideX. */
int cublasGemmStridedBatchedEx(void *handle, int transa, int transb, int m, int n, int k,
                               const void *alpha, const void *A, int Atype, int lda,
                               long long strideA, const void *B, int Btype, int ldb,
                               long long strideB, const void *beta, void *C, int Ctype, int ldc,
                               long long strideC, int batchCount, int computeType, int algo) {
  struct handle *h = in_its_context(handle);
  const struct kiln_fake_cuda_stream *stream = h->stream;
  if (!stream || strcmp(stream->name, KILN_FAKE_HALIDE_STREAM) != 0)
    broken("library calls run on Halide's stream, ordered with its kernels");
  struct kiln_fake_cublas_call call = {transa,  transb,  m,       n,          k,
                                       lda,     ldb,     ldc,     strideA,    strideB,
                                       strideC, batchCount, computeType};
  last = call;
  ++calls;
  int status = env("KILN_FAKE_CUBLAS_STATUS");
  if (status)
    return status;
  if ((transa != kOpN && transa != kOpT) || (transb != kOpN && transb != kOpT) || m < 0 ||
      n < 0 || k < 0 || batchCount < 0 || lda < max1(transa == kOpN ? m : k) ||
      ldb < max1(transb == kOpN ? k : n) || ldc < max1(m))
    return kInvalidValue;
  if (Atype != kR32F || Btype != kR32F || Ctype != kR32F ||
      (computeType != kCompute32F && computeType != kCompute32FFastTF32) || algo != -1)
    return kNotSupported;
  float a = *(const float *)alpha, b = *(const float *)beta;
  int round = computeType == kCompute32FFastTF32;
  for (int p = 0; p < batchCount; ++p) {
    const float *Ap = (const float *)A + p * strideA, *Bp = (const float *)B + p * strideB;
    float *Cp = (float *)C + p * strideC;
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        float sum = 0;
        for (int l = 0; l < k; ++l) {
          float x = element(Ap, transa, lda, i, l), y = element(Bp, transb, ldb, l, j);
          sum += round ? tf32(x) * tf32(y) : x * y;
        }
        float *c = &Cp[i + (int64_t)j * ldc];
        *c = b == 0 ? a * sum : a * sum + b * *c; /* beta 0: C is not read */
      }
  }
  return kSuccess;
}
