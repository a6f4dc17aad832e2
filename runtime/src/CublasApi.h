// The part of cuBLAS's C API (cublas_api.h, library_types.h) the runtime calls, declared
// without CUDA's headers: the runtime dlopens cuBLAS and never includes or links it.
// Handles and streams are pointers, enums and statuses ints; test/runtime's
// CublasApiTest.cpp checks these values against CUDA's headers where they exist.
#ifndef KILN_RUNTIME_CUBLASAPI_H
#define KILN_RUNTIME_CUBLASAPI_H

namespace kiln::runtime::cublas {

constexpr int kStatusSuccess = 0;   // CUBLAS_STATUS_SUCCESS
constexpr int kOpN = 0;             // CUBLAS_OP_N
constexpr int kOpT = 1;             // CUBLAS_OP_T
constexpr int kR32F = 0;            // CUDA_R_32F (cudaDataType)
constexpr int kCompute32F = 68;     // CUBLAS_COMPUTE_32F
constexpr int kCompute32FFastTF32 = 77; // CUBLAS_COMPUTE_32F_FAST_TF32
constexpr int kGemmDefault = -1;    // CUBLAS_GEMM_DEFAULT

using CreateFn = int (*)(void **handle);           // cublasCreate_v2
using DestroyFn = int (*)(void *handle);           // cublasDestroy_v2
using SetStreamFn = int (*)(void *handle, void *stream); // cublasSetStream_v2
using GetVersionFn = int (*)(void *handle, int *version); // cublasGetVersion_v2
// cublasGemmStridedBatchedEx: column-major C = alpha op(A) op(B) + beta C per batch.
using GemmStridedBatchedExFn = int (*)(void *handle, int transa, int transb, int m, int n,
                                       int k, const void *alpha, const void *A, int Atype,
                                       int lda, long long strideA, const void *B, int Btype,
                                       int ldb, long long strideB, const void *beta, void *C,
                                       int Ctype, int ldc, long long strideC, int batchCount,
                                       int computeType, int algo);

} // namespace kiln::runtime::cublas

#endif // KILN_RUNTIME_CUBLASAPI_H
