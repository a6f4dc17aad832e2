// The runtime's declarations of cuBLAS (runtime/src/CublasApi.h), checked at compile
// time against CUDA's own headers: the values it passes and the function types it
// calls through. Built only where the headers are installed; running it is a formality.
#include "CublasApi.h"

#include <cublas_api.h>

#include <type_traits>

namespace cublas = kiln::runtime::cublas;

static_assert(cublas::kStatusSuccess == CUBLAS_STATUS_SUCCESS);
static_assert(cublas::kOpN == CUBLAS_OP_N);
static_assert(cublas::kOpT == CUBLAS_OP_T);
static_assert(cublas::kR32F == CUDA_R_32F);
static_assert(cublas::kCompute32F == CUBLAS_COMPUTE_32F);
static_assert(cublas::kCompute32FFastTF32 == CUBLAS_COMPUTE_32F_FAST_TF32);
static_assert(cublas::kGemmDefault == CUBLAS_GEMM_DEFAULT);

// The runtime passes ints for these enums and pointers for handles and streams.
static_assert(sizeof(cublasStatus_t) == sizeof(int) && sizeof(cublasOperation_t) == sizeof(int) &&
              sizeof(cudaDataType) == sizeof(int) && sizeof(cublasComputeType_t) == sizeof(int) &&
              sizeof(cublasGemmAlgo_t) == sizeof(int));
static_assert(std::is_pointer_v<cublasHandle_t> && std::is_pointer_v<cudaStream_t>);

// Each function type, read with the runtime's stand-ins for CUDA's types, is the
// runtime's.
template <typename T> struct AsRuntime { using type = T; };
template <> struct AsRuntime<cublasStatus_t> { using type = int; };
template <> struct AsRuntime<cublasOperation_t> { using type = int; };
template <> struct AsRuntime<cudaDataType> { using type = int; };
template <> struct AsRuntime<cublasComputeType_t> { using type = int; };
template <> struct AsRuntime<cublasGemmAlgo_t> { using type = int; };
template <> struct AsRuntime<cublasHandle_t> { using type = void *; };
template <> struct AsRuntime<cublasHandle_t *> { using type = void **; };
template <> struct AsRuntime<cudaStream_t> { using type = void *; };
template <typename R, typename... Args> struct AsRuntime<R (*)(Args...)> {
  using type = typename AsRuntime<R>::type (*)(typename AsRuntime<Args>::type...);
};
template <typename F> using AsRuntimeT = typename AsRuntime<F>::type;

static_assert(std::is_same_v<AsRuntimeT<decltype(&cublasCreate_v2)>, cublas::CreateFn>);
static_assert(std::is_same_v<AsRuntimeT<decltype(&cublasDestroy_v2)>, cublas::DestroyFn>);
static_assert(std::is_same_v<AsRuntimeT<decltype(&cublasSetStream_v2)>, cublas::SetStreamFn>);
static_assert(std::is_same_v<AsRuntimeT<decltype(&cublasGetVersion_v2)>, cublas::GetVersionFn>);
// C++ also sees an inline overload taking a cudaDataType compute type (cuBLAS 10's).
using GemmStridedBatchedEx = cublasStatus_t (*)(
    cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
    const void *, cudaDataType, int, long long, const void *, cudaDataType, int, long long,
    const void *, void *, cudaDataType, int, long long, int, cublasComputeType_t,
    cublasGemmAlgo_t);
static_assert(std::is_same_v<AsRuntimeT<GemmStridedBatchedEx>, cublas::GemmStridedBatchedExFn>);
static_assert(
    std::is_same_v<decltype(static_cast<GemmStridedBatchedEx>(&cublasGemmStridedBatchedEx)),
                   GemmStridedBatchedEx>);

int main() { return 0; }
