// The compilation pipeline, assembled in one place.
#ifndef KILN_COMPILER_PIPELINES_H
#define KILN_COMPILER_PIPELINES_H

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace kiln {

/// Appends kiln's default pipeline (what `kiln-compile` runs) to `pm`, which must
/// operate on a builtin.module.
void buildDefaultPipeline(mlir::OpPassManager &pm);

/// Registers `--kiln-default-pipeline` with the pass registry (for kiln-opt).
void registerPipelines();

} // namespace kiln

#endif // KILN_COMPILER_PIPELINES_H
