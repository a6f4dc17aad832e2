// Shared linalg/tensor construction for the ONNX op lowerings.
#include "frontends/onnx/OnnxLinalgBuilders.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/ReshapeOpsUtils.h"

#include <limits>

using namespace mlir;
using namespace kiln::onnx_import;

std::optional<SmallVector<int64_t>>
kiln::onnx_import::broadcastShapes(ArrayRef<SmallVector<int64_t>> shapes) {
  size_t rank = 0;
  for (const SmallVector<int64_t> &shape : shapes)
    rank = std::max(rank, shape.size());
  SmallVector<int64_t> result(rank, 1);
  for (const SmallVector<int64_t> &shape : shapes) {
    size_t offset = rank - shape.size();
    for (auto [i, dim] : llvm::enumerate(shape)) {
      int64_t &out = result[offset + i];
      if (dim == out || dim == 1)
        continue;
      if (out != 1)
        return std::nullopt;
      out = dim;
    }
  }
  return result;
}

AffineMap kiln::onnx_import::broadcastMap(ArrayRef<int64_t> shape,
                                          ArrayRef<int64_t> resultShape,
                                          MLIRContext *context) {
  size_t offset = resultShape.size() - shape.size();
  SmallVector<AffineExpr> exprs;
  for (auto [i, dim] : llvm::enumerate(shape))
    exprs.push_back(dim == 1 && resultShape[offset + i] != 1
                        ? getAffineConstantExpr(0, context)
                        : getAffineDimExpr(offset + i, context));
  return AffineMap::get(resultShape.size(), 0, exprs, context);
}

Value kiln::onnx_import::emptyTensor(OpBuilder &b, Location loc, ArrayRef<int64_t> shape,
                                     Type elementType) {
  return tensor::EmptyOp::create(b, loc, shape, elementType);
}

Value kiln::onnx_import::filledTensor(OpBuilder &b, Location loc, ArrayRef<int64_t> shape,
                                      Value scalar) {
  Value empty = emptyTensor(b, loc, shape, scalar.getType());
  return linalg::FillOp::create(b, loc, ValueRange{scalar}, ValueRange{empty}).getResult(0);
}

Value kiln::onnx_import::buildGeneric(OpBuilder &b, Location loc, Value init,
                                      ValueRange inputs, ArrayRef<AffineMap> maps,
                                      ArrayRef<utils::IteratorType> iterators,
                                      BodyBuilder body) {
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{init.getType()}, inputs, ValueRange{init}, maps, iterators,
      [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
        Value result = body(nested, nestedLoc, args);
        linalg::YieldOp::create(nested, nestedLoc, result);
      });
  return generic.getResult(0);
}

Value kiln::onnx_import::buildElementwise(OpBuilder &b, Location loc,
                                          ArrayRef<int64_t> resultShape, Type elementType,
                                          ValueRange inputs, BodyBuilder body) {
  MLIRContext *context = b.getContext();
  SmallVector<AffineMap> maps;
  for (Value input : inputs)
    maps.push_back(
        broadcastMap(cast<RankedTensorType>(input.getType()).getShape(), resultShape, context));
  maps.push_back(AffineMap::getMultiDimIdentityMap(resultShape.size(), context));
  SmallVector<utils::IteratorType> iterators(resultShape.size(),
                                             utils::IteratorType::parallel);
  Value init = emptyTensor(b, loc, resultShape, elementType);
  return buildGeneric(b, loc, init, inputs, maps, iterators,
                      [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
                        return body(nested, nestedLoc, args.drop_back());
                      });
}

Value kiln::onnx_import::buildElementwise(OpBuilder &b, Location loc, Type elementType,
                                          ValueRange inputs, BodyBuilder body) {
  SmallVector<SmallVector<int64_t>> shapes;
  for (Value input : inputs)
    shapes.push_back(llvm::to_vector(cast<RankedTensorType>(input.getType()).getShape()));
  std::optional<SmallVector<int64_t>> shape = broadcastShapes(shapes);
  assert(shape && "callers check broadcast compatibility");
  return buildElementwise(b, loc, *shape, elementType, inputs, body);
}

Value kiln::onnx_import::buildReduction(OpBuilder &b, Location loc, Value input,
                                        ArrayRef<int64_t> axes, bool keepDims, Value init,
                                        Combiner combine) {
  MLIRContext *context = b.getContext();
  auto type = cast<RankedTensorType>(input.getType());
  SmallVector<int64_t> reducedShape, keptShape;
  SmallVector<AffineExpr> outExprs;
  SmallVector<utils::IteratorType> iterators;
  for (auto [i, dim] : llvm::enumerate(type.getShape())) {
    bool reduced = llvm::is_contained(axes, int64_t(i));
    iterators.push_back(reduced ? utils::IteratorType::reduction
                                : utils::IteratorType::parallel);
    keptShape.push_back(reduced ? 1 : dim);
    if (!reduced) {
      reducedShape.push_back(dim);
      outExprs.push_back(getAffineDimExpr(i, context));
    }
  }
  AffineMap inMap = AffineMap::getMultiDimIdentityMap(type.getRank(), context);
  AffineMap outMap = AffineMap::get(type.getRank(), 0, outExprs, context);
  Value acc = filledTensor(b, loc, reducedShape, init);
  Value result = buildGeneric(b, loc, acc, input, {inMap, outMap}, iterators,
                              [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
                                return combine(nested, nestedLoc, args[0], args[1]);
                              });
  return keepDims ? buildReshape(b, loc, result, keptShape) : result;
}

Value kiln::onnx_import::buildReshape(OpBuilder &b, Location loc, Value input,
                                      ArrayRef<int64_t> shape) {
  auto type = cast<RankedTensorType>(input.getType());
  if (type.getShape() == shape)
    return input;
  auto target = RankedTensorType::get(shape, type.getElementType());
  if (target.getRank() < type.getRank()) {
    if (auto reassociation = getReassociationIndicesForReshape(type, target))
      return tensor::CollapseShapeOp::create(b, loc, target, input, *reassociation);
  } else if (target.getRank() > type.getRank()) {
    if (auto reassociation = getReassociationIndicesForReshape(target, type))
      return tensor::ExpandShapeOp::create(b, loc, target, input, *reassociation);
  }
  Value flat = input;
  if (type.getRank() != 1) {
    auto flatType = RankedTensorType::get({type.getNumElements()}, type.getElementType());
    SmallVector<ReassociationIndices> all(1);
    for (int64_t i = 0; i < type.getRank(); ++i)
      all[0].push_back(i);
    if (type.getRank() == 0)
      flat = tensor::ExpandShapeOp::create(b, loc, flatType, input,
                                           ArrayRef<ReassociationIndices>{});
    else
      flat = tensor::CollapseShapeOp::create(b, loc, flatType, input, all);
  }
  if (target.getRank() == 1)
    return flat;
  if (target.getRank() == 0)
    return tensor::CollapseShapeOp::create(b, loc, target, flat,
                                           ArrayRef<ReassociationIndices>{});
  SmallVector<ReassociationIndices> all(1);
  for (int64_t i = 0; i < target.getRank(); ++i)
    all[0].push_back(i);
  return tensor::ExpandShapeOp::create(b, loc, target, flat, all);
}

Value kiln::onnx_import::buildTranspose(OpBuilder &b, Location loc, Value input,
                                        ArrayRef<int64_t> perm) {
  auto type = cast<RankedTensorType>(input.getType());
  SmallVector<int64_t> shape;
  for (int64_t p : perm)
    shape.push_back(type.getDimSize(p));
  // result[i0..] = input[j..] with j[perm[k]] = i_k.
  MLIRContext *context = b.getContext();
  SmallVector<AffineExpr> exprs(perm.size());
  for (auto [k, p] : llvm::enumerate(perm))
    exprs[p] = getAffineDimExpr(k, context);
  AffineMap inMap = AffineMap::get(perm.size(), 0, exprs, context);
  AffineMap outMap = AffineMap::getMultiDimIdentityMap(perm.size(), context);
  SmallVector<utils::IteratorType> iterators(perm.size(), utils::IteratorType::parallel);
  Value init = emptyTensor(b, loc, shape, type.getElementType());
  return buildGeneric(b, loc, init, input, {inMap, outMap}, iterators,
                      [](OpBuilder &, Location, ValueRange args) { return args[0]; });
}

Value kiln::onnx_import::buildPad(OpBuilder &b, Location loc, Value input,
                                  ArrayRef<int64_t> low, ArrayRef<int64_t> high,
                                  Value padScalar) {
  if (llvm::all_of(low, [](int64_t v) { return v == 0; }) &&
      llvm::all_of(high, [](int64_t v) { return v == 0; }))
    return input;
  auto type = cast<RankedTensorType>(input.getType());
  SmallVector<int64_t> shape;
  SmallVector<OpFoldResult> lowSizes, highSizes;
  for (int64_t i = 0; i < type.getRank(); ++i) {
    shape.push_back(type.getDimSize(i) + low[i] + high[i]);
    lowSizes.push_back(b.getIndexAttr(low[i]));
    highSizes.push_back(b.getIndexAttr(high[i]));
  }
  auto resultType = RankedTensorType::get(shape, type.getElementType());
  return tensor::PadOp::create(b, loc, resultType, input, lowSizes, highSizes, padScalar);
}

Value kiln::onnx_import::scalarConstant(OpBuilder &b, Location loc, Type type,
                                        double value) {
  if (auto floatType = dyn_cast<FloatType>(type))
    return arith::ConstantOp::create(b, loc, b.getFloatAttr(floatType, value));
  if (type.isIndex())
    return arith::ConstantIndexOp::create(b, loc, int64_t(value));
  unsigned width = type.getIntOrFloatBitWidth();
  APInt bits(64, uint64_t(int64_t(value)));
  return arith::ConstantOp::create(b, loc, b.getIntegerAttr(type, bits.trunc(width)));
}

static Value extremeValue(OpBuilder &b, Location loc, Type type, bool isUnsigned,
                          bool highest) {
  if (auto floatType = dyn_cast<FloatType>(type)) {
    APFloat inf = APFloat::getInf(floatType.getFloatSemantics(), /*Negative=*/!highest);
    return arith::ConstantOp::create(b, loc, b.getFloatAttr(floatType, inf));
  }
  unsigned width = type.getIntOrFloatBitWidth();
  APInt value = isUnsigned ? (highest ? APInt::getMaxValue(width) : APInt::getMinValue(width))
                           : (highest ? APInt::getSignedMaxValue(width)
                                      : APInt::getSignedMinValue(width));
  if (width == 1)
    value = APInt(1, highest ? 1 : 0);
  return arith::ConstantOp::create(b, loc, b.getIntegerAttr(type, value));
}

Value kiln::onnx_import::highestValue(OpBuilder &b, Location loc, Type type,
                                      bool isUnsigned) {
  return extremeValue(b, loc, type, isUnsigned, /*highest=*/true);
}

Value kiln::onnx_import::lowestValue(OpBuilder &b, Location loc, Type type,
                                     bool isUnsigned) {
  return extremeValue(b, loc, type, isUnsigned, /*highest=*/false);
}

Value kiln::onnx_import::convertScalar(OpBuilder &b, Location loc, Value value, Type to,
                                       bool fromUnsigned, bool toUnsigned) {
  Type from = value.getType();
  if (from == to)
    return value;
  auto fromFloat = dyn_cast<FloatType>(from);
  auto toFloat = dyn_cast<FloatType>(to);
  if (to.isInteger(1)) {
    if (fromFloat)
      return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNE, value,
                                   scalarConstant(b, loc, from, 0));
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, value,
                                 scalarConstant(b, loc, from, 0));
  }
  // Bools are 0/1 whatever the signedness of the target.
  if (from.isInteger(1))
    fromUnsigned = true;
  if (fromFloat && toFloat && fromFloat.getWidth() == toFloat.getWidth()) // f16 <-> bf16
    value = arith::ExtFOp::create(b, loc, b.getF32Type(), value);
  if (fromFloat && toFloat && toFloat.isBF16())
    // ONNX (1.12 and its node tests) narrows to bfloat16 by dropping the low mantissa
    // bits: round toward zero, not to nearest.
    return arith::TruncFOp::create(
        b, loc, to, value,
        arith::RoundingModeAttr::get(b.getContext(), arith::RoundingMode::toward_zero),
        arith::FastMathFlagsAttr());
  if (fromFloat && toFloat)
    return cast<FloatType>(value.getType()).getWidth() < toFloat.getWidth()
               ? arith::ExtFOp::create(b, loc, to, value).getResult()
               : arith::TruncFOp::create(b, loc, to, value).getResult();
  if (fromFloat)
    return toUnsigned ? arith::FPToUIOp::create(b, loc, to, value).getResult()
                      : arith::FPToSIOp::create(b, loc, to, value).getResult();
  if (toFloat)
    return fromUnsigned ? arith::UIToFPOp::create(b, loc, to, value).getResult()
                        : arith::SIToFPOp::create(b, loc, to, value).getResult();
  unsigned fromWidth = from.getIntOrFloatBitWidth(), toWidth = to.getIntOrFloatBitWidth();
  if (fromWidth > toWidth)
    return arith::TruncIOp::create(b, loc, to, value);
  if (fromWidth < toWidth)
    return fromUnsigned ? arith::ExtUIOp::create(b, loc, to, value).getResult()
                        : arith::ExtSIOp::create(b, loc, to, value).getResult();
  return value;
}
