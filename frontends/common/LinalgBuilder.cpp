// The linalg pieces the model frontends build their graphs from.
#include "frontends/common/LinalgBuilder.h"

#include "dialects/Kiln/KilnDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;

namespace kiln {

Value LinalgBuilder::generic(ValueRange inputs, ArrayRef<AffineMap> inputMaps,
                             ArrayRef<int64_t> shape, ScalarBody body, Location loc,
                             int64_t reductionDims) {
  Type f32 = builder.getF32Type();
  int64_t parallelDims = int64_t(shape.size());
  SmallVector<utils::IteratorType> iterators(parallelDims, utils::IteratorType::parallel);
  iterators.append(reductionDims, utils::IteratorType::reduction);
  SmallVector<AffineMap> maps(inputMaps);
  // The result is indexed by the parallel loops, which come first.
  maps.push_back(builder.getMultiDimIdentityMap(parallelDims + reductionDims)
                     .getMajorSubMap(parallelDims));
  Value init = tensor::EmptyOp::create(builder, loc, shape, f32);
  if (reductionDims) {
    Value zero = arith::ConstantOp::create(builder, loc, builder.getF32FloatAttr(0));
    init = linalg::FillOp::create(builder, loc, ValueRange{zero}, ValueRange{init}).getResult(0);
  }
  return linalg::GenericOp::create(
             builder, loc, TypeRange{init.getType()}, inputs, ValueRange{init}, maps, iterators,
             [&](OpBuilder &b, Location l, ValueRange args) {
               SmallVector<Value> values;
               for (Value arg : args) {
                 if (isa<FloatType>(arg.getType()) && !arg.getType().isF32())
                   arg = arith::ExtFOp::create(b, l, b.getF32Type(), arg);
                 values.push_back(arg);
               }
               // A reduction's body also sees the accumulator last.
               ValueRange operands(values);
               linalg::YieldOp::create(
                   b, l, body(b, l, reductionDims ? operands : operands.drop_back()));
             })
      .getResult(0);
}

Value LinalgBuilder::elementwise(ValueRange inputs, Location loc, ScalarBody body) {
  auto type = cast<RankedTensorType>(inputs.front().getType());
  SmallVector<AffineMap> maps(inputs.size(), builder.getMultiDimIdentityMap(type.getRank()));
  return generic(inputs, maps, type.getShape(), body, loc);
}

Value LinalgBuilder::add(Value lhs, Value rhs, Location loc) {
  return elementwise({lhs, rhs}, loc, [](OpBuilder &b, Location l, ValueRange args) -> Value {
    return arith::AddFOp::create(b, l, args[0], args[1]);
  });
}

Value LinalgBuilder::toF32(Value value, Location loc) {
  Type element = cast<RankedTensorType>(value.getType()).getElementType();
  if (element.isF32())
    return value;
  if (isa<QuantType>(element))
    return DequantizeOp::create(builder, loc, value, Value(), Value());
  // generic() widens the elements on the way in.
  return elementwise(value, loc, [](OpBuilder &, Location, ValueRange args) { return args[0]; });
}

Value LinalgBuilder::matmulTransposed(Value x, Value w, Location loc, WeightRead read) {
  MLIRContext *context = builder.getContext();
  Type f32 = builder.getF32Type();
  int64_t rows = cast<RankedTensorType>(x.getType()).getDimSize(0);
  auto wType = cast<RankedTensorType>(w.getType());
  int64_t cols = wType.getDimSize(0), inner = wType.getDimSize(1);
  Value zero = arith::ConstantOp::create(builder, loc, builder.getF32FloatAttr(0));
  Value empty = tensor::EmptyOp::create(builder, loc, ArrayRef<int64_t>{rows, cols}, f32);
  Value acc =
      linalg::FillOp::create(builder, loc, ValueRange{zero}, ValueRange{empty}).getResult(0);
  if (read == WeightRead::TransposedCopy && !w.getDefiningOp<DequantizeOp>()) {
    Value wtEmpty = tensor::EmptyOp::create(builder, loc, ArrayRef<int64_t>{inner, cols}, f32);
    Value wt = linalg::TransposeOp::create(builder, loc, w, wtEmpty, ArrayRef<int64_t>{1, 0})
                   .getResult()[0];
    return linalg::MatmulOp::create(builder, loc, TypeRange{acc.getType()}, ValueRange{x, wt},
                                    ValueRange{acc})
        .getResult(0);
  }
  AffineExpr m, n, k;
  bindDims(context, m, n, k);
  auto matmul = linalg::MatmulOp::create(builder, loc, TypeRange{acc.getType()},
                                         ValueRange{x, w}, ValueRange{acc});
  matmul.setIndexingMapsAttr(builder.getAffineMapArrayAttr(
      {AffineMap::get(3, 0, {m, k}, context), AffineMap::get(3, 0, {n, k}, context),
       AffineMap::get(3, 0, {m, n}, context)}));
  return matmul.getResult(0);
}

} // namespace kiln
