// Which operands of a product (a contraction) are 2-D float weights, and which operand
// carries the activations it multiplies them with: what kiln-quantize-weights packs,
// what kiln-return-product-inputs exposes and what kiln-awq-scale scales.
#ifndef KILN_COMPILER_TRANSFORMS_PRODUCTWEIGHTS_H
#define KILN_COMPILER_TRANSFORMS_PRODUCTWEIGHTS_H

#include "dialects/Kiln/KilnDialect.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"

#include <optional>
#include <string>

namespace kiln {

/// A product's operand that reads a 2-D float weight as [K, N] or [N, K], K being a
/// reduction dimension of the product and N a parallel one.
struct ProductWeight {
  WeightOp weight;
  /// The weight as the product reads it is [K, N] (ONNX's MatMul initializer) rather
  /// than [N, K].
  bool reductionFirst;
  int64_t n, k;
  /// The product's loop dimension that K is.
  unsigned reductionDim;
};

/// Whether `copy` only widens its one input element by element: identity maps, its
/// payload one arith.extf of the input, yielded (a frontend's f16/bf16 -> f32 copy of a
/// weight).
bool isElementwiseWidening(mlir::linalg::GenericOp copy);

/// The weight a contraction operand reads: the weight itself, or the weight a
/// frontend's widening copy (isElementwiseWidening) reads.
WeightOp weightBehind(mlir::Value operand);

/// `operand` of `op` as a ProductWeight, or nullopt when it reads no 2-D f32/f16/bf16
/// weight along one reduction and one parallel dimension.
std::optional<ProductWeight> matchProductWeight(mlir::linalg::LinalgOp op,
                                                mlir::OpOperand &operand);

/// The other input of a two-input product whose operand `weight` is read along
/// reduction dimension `reductionDim`: the activations, when their innermost
/// dimension is that reduction (one row per token, K values a row); else null.
mlir::OpOperand *activationOperand(mlir::linalg::LinalgOp op, mlir::OpOperand &weight,
                                   unsigned reductionDim);

/// The function-result name under which kiln-return-product-inputs exposes the
/// activations of `weightName`'s product ("<name>.input", with characters other than
/// letters, digits, '.', '_' and '-' replaced by '_', so it is also a file name).
std::string productInputName(llvm::StringRef weightName);

} // namespace kiln

#endif // KILN_COMPILER_TRANSFORMS_PRODUCTWEIGHTS_H
