// The CPU backend: Halide AOT code for x86-64 and arm64, linked into one shared object.
#ifndef KILN_BACKENDS_CPU_CPUBACKEND_H
#define KILN_BACKENDS_CPU_CPUBACKEND_H

#include "backends/Backend.h"

namespace kiln::cpu {

/// "host", or a Halide target string without GPU features.
bool handlesTarget(llvm::StringRef target);

std::unique_ptr<Backend> createCpuBackend(llvm::StringRef target, std::string &error,
                                          const NumericsOptions &numerics);

} // namespace kiln::cpu

#endif // KILN_BACKENDS_CPU_CPUBACKEND_H
