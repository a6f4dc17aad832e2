// CUDA code generation through Halide's PTX backend (see CudaBackend.h). Each target
// architecture is a code object of its own: the same kernels, host code for a baseline
// x86-64 or arm64 CPU (it only launches the kernels and moves buffers), PTX for that
// architecture, and Halide's runtime with its CUDA module, which loads libcuda with
// dlopen when a kernel first runs.
#include "backends/cuda/CudaBackend.h"

#include "backends/halide/AotBackend.h"

#include "llvm/ADT/StringExtras.h"

#include <set>

using namespace mlir;

namespace kiln::cuda {

namespace {

/// Halide 14's CUDA capabilities; newer GPUs run the newest one's PTX, which the driver
/// compiles for them when the code is loaded.
struct Capability {
  int sm;
  Halide::Target::Feature feature;
};
const Capability kCapabilities[] = {
    {75, Halide::Target::CUDACapability75},
    {80, Halide::Target::CUDACapability80},
    {86, Halide::Target::CUDACapability86},
};

/// The Halide targets of "cuda[-sm_NN...]", or an error in `error`.
std::vector<Halide::Target> parseTarget(llvm::StringRef target, std::string &error) {
  if (target != "cuda" && !target.starts_with("cuda-")) {
    error = "'" + target.str() + "' is not a CUDA target";
    return {};
  }
  llvm::SmallVector<llvm::StringRef> archs;
  target.split(archs, '-');
  archs.erase(archs.begin());
  if (archs.empty())
    archs.push_back("sm_80");
  Halide::Target host = halide::hostTarget();
  Halide::Target base(Halide::Target::Linux, host.arch, host.bits);
  std::set<int> chosen;
  std::vector<Halide::Target> targets;
  for (llvm::StringRef arch : archs) {
    int sm = 0;
    if (!arch.consume_front("sm_") || arch.getAsInteger(10, sm) || sm < kCapabilities[0].sm) {
      error = "'" + target.str() + "': each architecture is sm_NN with NN >= " +
              std::to_string(kCapabilities[0].sm) + " (e.g. cuda-sm_80 or cuda-sm_80-sm_90)";
      return {};
    }
    const Capability *best = &kCapabilities[0];
    for (const Capability &c : kCapabilities)
      if (c.sm <= sm)
        best = &c;
    if (chosen.insert(best->sm).second)
      targets.push_back(base.with_feature(Halide::Target::CUDA).with_feature(best->feature));
  }
  return targets;
}

/// Activations stay f32 on the GPU (LoweringOptions::forTarget leaves the int8 path,
/// a CPU decoding speed-up built on x86/arm dot-product instructions, off). GEMMs that
/// kiln-mark-library-products marked are cuBLAS calls where the runtime finds cuBLAS
/// (the `gpu_library` knob), in IEEE float32 unless NumericsOptions::tf32.
class CudaBackend : public halide::GpuAotBackend {
public:
  CudaBackend(std::vector<Halide::Target> targets, const NumericsOptions &numerics)
      : GpuAotBackend("cuda", targets, "elf-shared-object",
                      halide::LoweringOptions::forTarget(targets.front())) {
    libraryCompute = numerics.tf32 ? "tf32" : "f32";
  }
};

} // namespace

bool handlesTarget(llvm::StringRef target) {
  return target == "cuda" || target.starts_with("cuda-");
}

std::unique_ptr<Backend> createCudaBackend(llvm::StringRef target, std::string &error,
                                           const NumericsOptions &numerics) {
  std::vector<Halide::Target> targets = parseTarget(target, error);
  if (targets.empty())
    return nullptr;
  return std::make_unique<CudaBackend>(std::move(targets), numerics);
}

} // namespace kiln::cuda
