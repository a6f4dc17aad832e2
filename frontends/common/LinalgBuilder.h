// The linalg pieces the model frontends build their graphs from: f32 elementwise and
// generic ops with scalar bodies, f32 weights, and x · wᵀ for a [out, in] weight.
#ifndef KILN_FRONTENDS_COMMON_LINALGBUILDER_H
#define KILN_FRONTENDS_COMMON_LINALGBUILDER_H

#include "mlir/IR/Builders.h"

#include <cstdint>

namespace kiln {

/// A scalar body: the inputs' elements (floats already widened to f32) and, in a
/// reduction, the accumulator last; returns the result element.
using ScalarBody = mlir::function_ref<mlir::Value(mlir::OpBuilder &, mlir::Location,
                                                  mlir::ValueRange)>;

/// How x · wᵀ reads a float weight w: [N, K]. Today's CPU kernels vectorize a matmul
/// along n, where w's rows are strided, so the faster form depends on the rows of x. On
/// a 4-block llama (dim 512, ffn 1536, one thread) 32 tokens take 75 ms in place and
/// 53 ms transposed with F32 weights (90 and 36 ms with F16), but a one-token decode
/// step takes 4.9 ms in place and 41 ms transposed (4.7 and 26 ms with F16).
/// A weight from kiln.dequantize is always read in place: the packed kernels stream its
/// blocks row by row in that form.
enum class WeightRead {
  /// One matmul reading w through an (n, k) map, no copy of w.
  InPlace,
  /// A transpose of w, then a plain matmul (torch's definition of Linear). When w is a
  /// kiln.weight, kiln-fold-weight-layouts stores it transposed, so nothing is copied
  /// at run time; otherwise the transpose copies w once per run.
  TransposedCopy,
};

/// Builds f32 linalg ops at its OpBuilder's insertion point.
class LinalgBuilder {
public:
  explicit LinalgBuilder(mlir::OpBuilder &builder) : builder(builder) {}

  /// A linalg.generic with an f32 result of `shape`, indexed by the first
  /// shape.size() (parallel) loops; `reductionDims` reduction loops follow them and
  /// the result starts at zero. Inputs are read through `inputMaps`.
  mlir::Value generic(mlir::ValueRange inputs, mlir::ArrayRef<mlir::AffineMap> inputMaps,
                      mlir::ArrayRef<int64_t> shape, ScalarBody body, mlir::Location loc,
                      int64_t reductionDims = 0);
  /// `body` applied to same-shape inputs element by element.
  mlir::Value elementwise(mlir::ValueRange inputs, mlir::Location loc, ScalarBody body);
  mlir::Value add(mlir::Value lhs, mlir::Value rhs, mlir::Location loc);
  /// A weight as f32: unchanged if f32, kiln.dequantize for a !kiln.quant tensor,
  /// else widened element by element (f16, bf16).
  mlir::Value toF32(mlir::Value value, mlir::Location loc);
  /// x · wᵀ for x: [M, K] and w: [N, K] (rows are output features), accumulated in f32.
  mlir::Value matmulTransposed(mlir::Value x, mlir::Value w, mlir::Location loc,
                               WeightRead read = WeightRead::InPlace);

private:
  mlir::OpBuilder &builder;
};

} // namespace kiln

#endif // KILN_FRONTENDS_COMMON_LINALGBUILDER_H
