// Building blocks the ONNX op lowerings share: numpy broadcasting, linalg.generic
// construction, reductions, reshapes and scalar conversions.
#ifndef KILN_FRONTENDS_ONNX_ONNXLINALGBUILDERS_H
#define KILN_FRONTENDS_ONNX_ONNXLINALGBUILDERS_H

#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/SmallVector.h"

#include <optional>

namespace kiln::onnx_import {

/// Computes one scalar of a linalg.generic body from its block arguments.
using BodyBuilder =
    llvm::function_ref<mlir::Value(mlir::OpBuilder &, mlir::Location, mlir::ValueRange)>;
/// Folds one element into a reduction's accumulator.
using Combiner = llvm::function_ref<mlir::Value(mlir::OpBuilder &, mlir::Location,
                                                mlir::Value element, mlir::Value acc)>;

/// The numpy broadcast of `shapes`, or nothing when they are incompatible.
std::optional<llvm::SmallVector<int64_t>>
broadcastShapes(llvm::ArrayRef<llvm::SmallVector<int64_t>> shapes);

/// The map from the loops of a `resultShape` iteration space to the elements of a
/// tensor of `shape` broadcast into it (numpy rules: align trailing dims; size-1 dims
/// read index 0).
mlir::AffineMap broadcastMap(llvm::ArrayRef<int64_t> shape,
                             llvm::ArrayRef<int64_t> resultShape,
                             mlir::MLIRContext *context);

mlir::Value emptyTensor(mlir::OpBuilder &b, mlir::Location loc,
                        llvm::ArrayRef<int64_t> shape, mlir::Type elementType);
/// A tensor of `shape` filled with `scalar` (linalg.fill).
mlir::Value filledTensor(mlir::OpBuilder &b, mlir::Location loc,
                         llvm::ArrayRef<int64_t> shape, mlir::Value scalar);

/// One linalg.generic with one result initialized by `init`: `maps` holds one map per
/// input and then the output's. The body receives the input scalars and the current
/// output value.
mlir::Value buildGeneric(mlir::OpBuilder &b, mlir::Location loc, mlir::Value init,
                         mlir::ValueRange inputs, llvm::ArrayRef<mlir::AffineMap> maps,
                         llvm::ArrayRef<mlir::utils::IteratorType> iterators,
                         BodyBuilder body);

/// An elementwise linalg.generic over `resultShape` whose inputs are broadcast numpy
/// style. The body receives one scalar per input.
mlir::Value buildElementwise(mlir::OpBuilder &b, mlir::Location loc,
                             llvm::ArrayRef<int64_t> resultShape, mlir::Type elementType,
                             mlir::ValueRange inputs, BodyBuilder body);
/// Elementwise over the numpy broadcast of the inputs' shapes (which must agree).
mlir::Value buildElementwise(mlir::OpBuilder &b, mlir::Location loc,
                             mlir::Type elementType, mlir::ValueRange inputs,
                             BodyBuilder body);

/// Reduces `input` over the sorted, distinct `axes` starting from `init`; reduced
/// dimensions are dropped, or kept with size 1 when `keepDims`.
mlir::Value buildReduction(mlir::OpBuilder &b, mlir::Location loc, mlir::Value input,
                           llvm::ArrayRef<int64_t> axes, bool keepDims, mlir::Value init,
                           Combiner combine);

/// Reshapes `input` to `shape` (same element count): a single collapse or expand when
/// the shapes allow it, else a collapse to 1-D followed by an expand.
mlir::Value buildReshape(mlir::OpBuilder &b, mlir::Location loc, mlir::Value input,
                         llvm::ArrayRef<int64_t> shape);
/// result.shape[i] = input.shape[perm[i]].
mlir::Value buildTranspose(mlir::OpBuilder &b, mlir::Location loc, mlir::Value input,
                           llvm::ArrayRef<int64_t> perm);
/// Pads with a constant; `low`/`high` per dimension, all non-negative.
mlir::Value buildPad(mlir::OpBuilder &b, mlir::Location loc, mlir::Value input,
                     llvm::ArrayRef<int64_t> low, llvm::ArrayRef<int64_t> high,
                     mlir::Value padScalar);

/// A scalar constant of `type` (integer, index or float) holding `value`.
mlir::Value scalarConstant(mlir::OpBuilder &b, mlir::Location loc, mlir::Type type,
                           double value);
/// The largest / smallest value of `type` (+-inf for floats), the identities of min /
/// max reductions.
mlir::Value highestValue(mlir::OpBuilder &b, mlir::Location loc, mlir::Type type,
                         bool isUnsigned);
mlir::Value lowestValue(mlir::OpBuilder &b, mlir::Location loc, mlir::Type type,
                        bool isUnsigned);
/// Converts a scalar between element types with ONNX Cast semantics (float -> int
/// truncates toward zero, anything -> bool is `!= 0`).
mlir::Value convertScalar(mlir::OpBuilder &b, mlir::Location loc, mlir::Value value,
                          mlir::Type to, bool fromUnsigned, bool toUnsigned);

} // namespace kiln::onnx_import

#endif // KILN_FRONTENDS_ONNX_ONNXLINALGBUILDERS_H
