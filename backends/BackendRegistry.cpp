// The table of backends: adding one is adding a row.
#include "backends/Backend.h"

#include "backends/cpu/CpuBackend.h"
#include "backends/cuda/CudaBackend.h"
#include "backends/metal/MetalBackend.h"

namespace kiln {

Backend::~Backend() = default;

namespace {
struct BackendEntry {
  const char *name;
  const char *targets; // for help texts
  bool (*handles)(llvm::StringRef target);
  std::unique_ptr<Backend> (*create)(llvm::StringRef target, std::string &error,
                                     const NumericsOptions &numerics);
};

const BackendEntry kBackends[] = {
    {"cpu", "host, arm-64-linux, or a Halide CPU target string", cpu::handlesTarget,
     cpu::createCpuBackend},
    {"cuda", "cuda, cuda-sm_NN[-sm_MM...] (PTX per architecture; default sm_80)",
     cuda::handlesTarget, cuda::createCudaBackend},
    {"metal", "metal (Apple GPUs, arm64 macOS)", metal::handlesTarget,
     metal::createMetalBackend},
};
} // namespace

std::unique_ptr<Backend> createBackend(llvm::StringRef target, std::string &error,
                                       const NumericsOptions &numerics) {
  for (const BackendEntry &entry : kBackends)
    if (entry.handles(target))
      return entry.create(target, error, numerics);
  error = "unknown target '" + target.str() + "'; known targets: " + describeTargets();
  return nullptr;
}

std::string describeTargets() {
  std::string text;
  for (const BackendEntry &entry : kBackends) {
    if (!text.empty())
      text += "; ";
    text += std::string(entry.name) + ": " + entry.targets;
  }
  return text;
}

} // namespace kiln
