// Turns a module that went through the pipeline into a .kiln artifact: kernels through
// a backend, weights and constants into the weights section, the memory plan into
// buffers, and the dispatch order into the entry point.
#ifndef KILN_COMPILER_ARTIFACTEMITTER_H
#define KILN_COMPILER_ARTIFACTEMITTER_H

#include "backends/Backend.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace kiln {

/// One entry point (function) of the artifact: its kernels and memory plan.
struct EntryPointSummary {
  std::string name;
  unsigned dispatches = 0;
  unsigned dispatchesBeforeFusion = 0; // as kiln-form-dispatches made them
  uint64_t arenaBytes = 0;             // kiln-plan-memory's kiln.arena_size
  uint64_t arenaLowerBound = 0;        // its kiln.arena_lower_bound
  unsigned inPlaceResults = 0;         // results that took a dying input's storage
};

/// What the emitter produced, for the summary kiln-compile prints and its --report-json.
/// Totals are over every entry point; the arena is shared, sized for the largest.
struct ArtifactSummary {
  unsigned dispatches = 0;
  unsigned dispatchesBeforeFusion = 0;
  unsigned kernels = 0; // distinct: identical dispatches share one
  /// Of those, the kernels a device library computes where the runtime has it
  /// (LibraryCall: cuBLAS GEMMs).
  unsigned libraryKernels = 0;
  uint64_t arenaBytes = 0;
  uint64_t arenaLowerBound = 0;
  uint64_t weightBytes = 0;
  /// The same weights as the model file stores them (before kiln-quantize-weights).
  uint64_t weightBytesBefore = 0;
  uint64_t stateBytes = 0; // persistent state slots (a KV cache), each counted once
  uint64_t codeBytes = 0;
  std::string target;
  std::vector<EntryPointSummary> entryPoints;
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
