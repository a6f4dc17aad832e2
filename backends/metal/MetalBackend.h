// The Metal backend: every kernel placed on the GPU (GpuSchedule), compiled by Halide to
// Metal Shading Language embedded in arm64 macOS launch code, linked into a Mach-O
// dynamic library (ld64.lld) that the runtime's Metal device loads on Apple machines.
#ifndef KILN_BACKENDS_METAL_METALBACKEND_H
#define KILN_BACKENDS_METAL_METALBACKEND_H

#include "backends/Backend.h"

namespace kiln::metal {

/// "metal".
bool handlesTarget(llvm::StringRef target);

std::unique_ptr<Backend> createMetalBackend(llvm::StringRef target, std::string &error,
                                            const NumericsOptions &numerics);

} // namespace kiln::metal

#endif // KILN_BACKENDS_METAL_METALBACKEND_H
