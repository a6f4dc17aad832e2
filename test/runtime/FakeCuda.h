/* What the fake CUDA pieces of the device tests share: Halide's CUDA context and stream
 * as the fake code object hands them out (TestGpuKernels.c), which the fake cuBLAS
 * checks it is called in (FakeCublas.c), and the GEMM calls it records for the tests
 * (DeviceTest.cpp). */
#ifndef KILN_TEST_RUNTIME_FAKECUDA_H
#define KILN_TEST_RUNTIME_FAKECUDA_H

#define KILN_FAKE_HALIDE_CONTEXT "kiln fake Halide CUDA context"
#define KILN_FAKE_HALIDE_STREAM "kiln fake Halide CUDA stream"

/* A CUcontext / CUstream as the fake code object's Halide runtime hands it out. */
struct kiln_fake_cuda_context {
  char name[32];
  int acquired; /* between halide_cuda_acquire_context and its release */
};
struct kiln_fake_cuda_stream {
  char name[32];
};

/* The arguments of a cublasGemmStridedBatchedEx call. */
struct kiln_fake_cublas_call {
  int transa, transb, m, n, k, lda, ldb, ldc;
  long long stride_a, stride_b, stride_c;
  int batch, compute_type;
};

#endif /* KILN_TEST_RUNTIME_FAKECUDA_H */
