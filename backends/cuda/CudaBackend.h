// The CUDA backend: every kernel placed on the GPU (GpuSchedule), compiled by Halide to
// PTX embedded in host launch code, one ELF shared object per GPU architecture.
#ifndef KILN_BACKENDS_CUDA_CUDABACKEND_H
#define KILN_BACKENDS_CUDA_CUDABACKEND_H

#include "backends/Backend.h"

namespace kiln::cuda {

/// "cuda", or "cuda-sm_NN[-sm_MM...]".
bool handlesTarget(llvm::StringRef target);

std::unique_ptr<Backend> createCudaBackend(llvm::StringRef target, std::string &error,
                                           const NumericsOptions &numerics);

} // namespace kiln::cuda

#endif // KILN_BACKENDS_CUDA_CUDABACKEND_H
