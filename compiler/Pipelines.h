// The compilation pipeline, assembled in one place.
#ifndef KILN_COMPILER_PIPELINES_H
#define KILN_COMPILER_PIPELINES_H

#include <string>

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace kiln {

/// What a compile may choose beyond the model.
struct PipelineOptions {
  /// Schedule knobs that every dispatch's kernel takes instead of the backend's
  /// default (kiln-select-schedules writes them as each dispatch's kiln.schedule).
  std::string schedule;
  /// Without `schedule`: the tuning database whose best recorded schedules dispatches
  /// take (empty: none; a missing file: none), and the backend's resolved target,
  /// part of its key.
  std::string tuningDatabase;
  std::string target;
  /// The GPU library that computes large float GEMMs ("cublas"; empty: none), their
  /// dispatches marked by kiln-mark-library-products and kept apart from epilogues.
  std::string library;
  /// Weight-only quantization of float weights: "" (none), "int8", "int4" or "int4-zp"
  /// (kiln-quantize-weights), and which weights stay float (its keep-float option).
  std::string quantize;
  std::string keepFloat = "embeddings,head";
  /// With `quantize`: AWQ scaling (kiln-awq-scale) from the calibration activations in
  /// these comma-separated directories (empty: none); relative weight sources are
  /// read from `modelDirectory`.
  std::string awqActivations;
  std::string modelDirectory;
  /// kiln-awq-scale's grid steps for alpha in [0, 1].
  unsigned awqSteps = 20;
  /// Calibration for AWQ: return every product's activations as extra results
  /// (kiln-return-product-inputs).
  bool returnProductInputs = false;
};

/// The GEMM library of a backend (PipelineOptions::library): "cublas" for "cuda",
/// empty for the others.
std::string gemmLibraryFor(const std::string &backendName);

/// Appends kiln's default pipeline (what `kiln-compile` runs) to `pm`, which must
/// operate on a builtin.module.
void buildDefaultPipeline(mlir::OpPassManager &pm, const PipelineOptions &options = {});

/// Registers `--kiln-default-pipeline` with the pass registry (for kiln-opt).
void registerPipelines();

} // namespace kiln

#endif // KILN_COMPILER_PIPELINES_H
