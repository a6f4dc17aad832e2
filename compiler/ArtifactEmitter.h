// Turns a module that went through the pipeline into a .kiln artifact: kernels through
// a backend, weights and constants into the weights section, the memory plan into
// buffers, and the dispatch order into the entry point.
#ifndef KILN_COMPILER_ARTIFACTEMITTER_H
#define KILN_COMPILER_ARTIFACTEMITTER_H

#include "backends/Backend.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace kiln {

/// What the emitter produced, for the summary kiln-compile prints.
struct ArtifactSummary {
  unsigned dispatches = 0;
  unsigned dispatchesBeforeFusion = 0; // as kiln-form-dispatches made them
  unsigned kernels = 0; // distinct: identical dispatches share one
  uint64_t arenaBytes = 0;
  uint64_t arenaLowerBound = 0;
  uint64_t weightBytes = 0;
  uint64_t codeBytes = 0;
};

/// Compiles `module` (after buildDefaultPipeline) with `backend` as `options` say and
/// writes the artifact to `path`. Relative kiln.weight sources are read from
/// `weightDirectory` (the model's directory). Errors are emitted as diagnostics at the
/// offending op.
mlir::FailureOr<ArtifactSummary> emitArtifact(mlir::ModuleOp module, Backend &backend,
                                              llvm::StringRef path,
                                              llvm::StringRef weightDirectory,
                                              const CompileOptions &options = {});

/// Lowers every dispatch with `backend` and returns the backend's human-readable form
/// of the kernels (for --emit=halide-stmt).
mlir::FailureOr<std::string> printKernels(mlir::ModuleOp module, Backend &backend);

} // namespace kiln

#endif // KILN_COMPILER_ARTIFACTEMITTER_H
