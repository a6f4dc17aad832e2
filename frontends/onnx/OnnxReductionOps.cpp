// ONNX reductions and the ops built from them: Reduce*, ArgMax/ArgMin, Softmax,
// LogSoftmax, Hardmax, CumSum and the losses NegativeLogLikelihoodLoss and
// SoftmaxCrossEntropyLoss. Every reduction is a linalg.generic with reduction
// iterators over a linalg.fill-ed accumulator.
#include "frontends/onnx/OnnxLinalgBuilders.h"
#include "frontends/onnx/OnnxNodeImporter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using namespace kiln::onnx_import;

namespace {

bool isFloat(Type type) { return isa<FloatType>(type); }

Value add(OpBuilder &b, Location loc, Value x, Value y) {
  return isFloat(x.getType()) ? arith::AddFOp::create(b, loc, x, y).getResult()
                              : arith::AddIOp::create(b, loc, x, y).getResult();
}
Value mul(OpBuilder &b, Location loc, Value x, Value y) {
  return isFloat(x.getType()) ? arith::MulFOp::create(b, loc, x, y).getResult()
                              : arith::MulIOp::create(b, loc, x, y).getResult();
}
Value maximum(OpBuilder &b, Location loc, Value x, Value y, bool isUnsigned) {
  if (isFloat(x.getType()))
    return arith::MaximumFOp::create(b, loc, x, y);
  return isUnsigned ? arith::MaxUIOp::create(b, loc, x, y).getResult()
                    : arith::MaxSIOp::create(b, loc, x, y).getResult();
}
Value minimum(OpBuilder &b, Location loc, Value x, Value y, bool isUnsigned) {
  if (isFloat(x.getType()))
    return arith::MinimumFOp::create(b, loc, x, y);
  return isUnsigned ? arith::MinUIOp::create(b, loc, x, y).getResult()
                    : arith::MinSIOp::create(b, loc, x, y).getResult();
}

/// The axes a Reduce* node reduces (sorted), or nothing when it is a no-op
/// (noop_with_empty_axes with no axes).
FailureOr<std::optional<SmallVector<int64_t>>> reductionAxes(NodeImporter &n) {
  int64_t rank = n.inputRank(0);
  std::vector<int64_t> axes;
  if (n.hasInput(1)) {
    FailureOr<std::vector<int64_t>> input = n.constantInts(1, "axes");
    if (failed(input))
      return failure();
    axes = *input;
  } else {
    axes = n.intsAttr("axes");
  }
  if (axes.empty()) {
    if (n.intAttr("noop_with_empty_axes", 0))
      return std::optional<SmallVector<int64_t>>();
    for (int64_t i = 0; i < rank; ++i)
      axes.push_back(i);
  }
  SmallVector<int64_t> result;
  for (int64_t axis : axes) {
    FailureOr<int64_t> a = n.normalizeAxis(axis, rank);
    if (failed(a))
      return failure();
    if (!llvm::is_contained(result, *a))
      result.push_back(*a);
  }
  llvm::sort(result);
  return std::optional(result);
}

enum class ReduceKind { Sum, Mean, Max, Min, Prod, L1, L2, LogSum, LogSumExp, SumSquare };

LogicalResult lowerReduce(NodeImporter &n, ReduceKind kind) {
  FailureOr<std::optional<SmallVector<int64_t>>> axes = reductionAxes(n);
  if (failed(axes))
    return failure();
  Value x = n.input(0);
  if (!x)
    return failure();
  if (!*axes)
    return n.setOutput(0, x);
  OpBuilder &b = n.builder();
  Location loc = n.loc();
  Type type = n.inputElementType(0);
  bool isUnsigned = n.inputIsUnsigned(0);
  bool keepDims = n.intAttr("keepdims", 1) != 0;
  bool floatOnly = kind == ReduceKind::L2 || kind == ReduceKind::LogSum ||
                   kind == ReduceKind::LogSumExp || (kind == ReduceKind::Mean && !isFloat(type));
  if (floatOnly && !isFloat(type))
    return n.unsupported("input type " + onnxTypeName(n.inputOnnxType(0)));
  Value init;
  switch (kind) {
  case ReduceKind::Max: init = lowestValue(b, loc, type, isUnsigned); break;
  case ReduceKind::Min: init = highestValue(b, loc, type, isUnsigned); break;
  case ReduceKind::Prod: init = scalarConstant(b, loc, type, 1); break;
  default: init = scalarConstant(b, loc, type, 0); break;
  }
  Value reduced = buildReduction(
      b, loc, x, **axes, keepDims, init,
      [&](OpBuilder &nb, Location nloc, Value e, Value acc) -> Value {
        switch (kind) {
        case ReduceKind::Max: return maximum(nb, nloc, e, acc, isUnsigned);
        case ReduceKind::Min: return minimum(nb, nloc, e, acc, isUnsigned);
        case ReduceKind::Prod: return mul(nb, nloc, e, acc);
        case ReduceKind::L1:
          if (isFloat(type))
            return add(nb, nloc, math::AbsFOp::create(nb, nloc, e), acc);
          return add(nb, nloc, isUnsigned ? e : math::AbsIOp::create(nb, nloc, e).getResult(), acc);
        case ReduceKind::L2: case ReduceKind::SumSquare:
          return add(nb, nloc, mul(nb, nloc, e, e), acc);
        case ReduceKind::LogSumExp:
          return add(nb, nloc, math::ExpOp::create(nb, nloc, e), acc);
        default: return add(nb, nloc, e, acc);
        }
      });
  int64_t count = 1;
  for (int64_t axis : **axes)
    count *= n.inputShape(0)[axis];
  auto finish = [&](llvm::function_ref<Value(OpBuilder &, Location, Value)> fn) {
    return buildElementwise(b, loc, cast<RankedTensorType>(reduced.getType()).getShape(),
                            type, reduced,
                            [&](OpBuilder &nb, Location nloc, ValueRange args) {
                              return fn(nb, nloc, args[0]);
                            });
  };
  switch (kind) {
  case ReduceKind::Mean:
    reduced = finish([&](OpBuilder &nb, Location nloc, Value v) -> Value {
      return arith::DivFOp::create(nb, nloc, v, scalarConstant(nb, nloc, type, count));
    });
    break;
  case ReduceKind::L2:
    reduced = finish([](OpBuilder &nb, Location nloc, Value v) -> Value {
      return math::SqrtOp::create(nb, nloc, v);
    });
    break;
  case ReduceKind::LogSum: case ReduceKind::LogSumExp:
    reduced = finish([](OpBuilder &nb, Location nloc, Value v) -> Value {
      return math::LogOp::create(nb, nloc, v);
    });
    break;
  default:
    break;
  }
  return n.setOutput(0, reduced);
}

/// Index of the first (or last) maximum / minimum along `axis`, as i64, keeping the
/// axis with size 1 when `keepDims`.
Value buildArgExtreme(OpBuilder &b, Location loc, Value x, int64_t axis, bool keepDims,
                      bool findMax, bool lastIndex, bool isUnsigned) {
  MLIRContext *context = b.getContext();
  auto type = cast<RankedTensorType>(x.getType());
  Type element = type.getElementType();
  int64_t rank = type.getRank();
  SmallVector<int64_t> reducedShape, keptShape(type.getShape());
  SmallVector<AffineExpr> outExprs;
  SmallVector<utils::IteratorType> iterators;
  for (int64_t i = 0; i < rank; ++i) {
    iterators.push_back(i == axis ? utils::IteratorType::reduction
                                  : utils::IteratorType::parallel);
    if (i != axis) {
      reducedShape.push_back(type.getDimSize(i));
      outExprs.push_back(getAffineDimExpr(i, context));
    }
  }
  keptShape[axis] = 1;
  AffineMap inMap = AffineMap::getMultiDimIdentityMap(rank, context);
  AffineMap outMap = AffineMap::get(rank, 0, outExprs, context);
  Value bestInit = filledTensor(b, loc, reducedShape,
                                findMax ? lowestValue(b, loc, element, isUnsigned)
                                        : highestValue(b, loc, element, isUnsigned));
  Value indexInit =
      filledTensor(b, loc, reducedShape, scalarConstant(b, loc, b.getI64Type(), 0));
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{bestInit.getType(), indexInit.getType()}, ValueRange{x},
      ValueRange{bestInit, indexInit}, ArrayRef<AffineMap>{inMap, outMap, outMap}, iterators,
      [&](OpBuilder &nb, Location nloc, ValueRange args) {
        Value e = args[0], best = args[1], bestIndex = args[2];
        Value index = arith::IndexCastOp::create(nb, nloc, nb.getI64Type(),
                                                 linalg::IndexOp::create(nb, nloc, axis));
        Value better;
        if (isFloat(element)) {
          auto predicate = findMax ? (lastIndex ? arith::CmpFPredicate::OGE : arith::CmpFPredicate::OGT)
                                   : (lastIndex ? arith::CmpFPredicate::OLE : arith::CmpFPredicate::OLT);
          better = arith::CmpFOp::create(nb, nloc, predicate, e, best);
        } else {
          auto predicate = findMax
              ? (lastIndex ? (isUnsigned ? arith::CmpIPredicate::uge : arith::CmpIPredicate::sge)
                           : (isUnsigned ? arith::CmpIPredicate::ugt : arith::CmpIPredicate::sgt))
              : (lastIndex ? (isUnsigned ? arith::CmpIPredicate::ule : arith::CmpIPredicate::sle)
                           : (isUnsigned ? arith::CmpIPredicate::ult : arith::CmpIPredicate::slt));
          better = arith::CmpIOp::create(nb, nloc, predicate, e, best);
        }
        // The first element always wins, so an all -inf row still has its index.
        Value first = arith::CmpIOp::create(nb, nloc, arith::CmpIPredicate::eq, index,
                                            scalarConstant(nb, nloc, nb.getI64Type(), 0));
        better = arith::OrIOp::create(nb, nloc, better, first);
        linalg::YieldOp::create(
            nb, nloc,
            ValueRange{arith::SelectOp::create(nb, nloc, better, e, best),
                       arith::SelectOp::create(nb, nloc, better, index, bestIndex)});
      });
  Value result = generic.getResult(1);
  return keepDims ? buildReshape(b, loc, result, keptShape) : result;
}

LogicalResult lowerArgExtreme(NodeImporter &n, bool findMax) {
  FailureOr<int64_t> axis = n.normalizeAxis(n.intAttr("axis", 0), n.inputRank(0));
  if (failed(axis))
    return failure();
  Value x = n.input(0);
  if (!x)
    return failure();
  return n.setOutput(0, buildArgExtreme(n.builder(), n.loc(), x, *axis,
                                        n.intAttr("keepdims", 1) != 0, findMax,
                                        n.intAttr("select_last_index", 0) != 0,
                                        n.inputIsUnsigned(0)));
}

/// The axes Softmax-like ops normalize over: the single `axis` since opset 13, the
/// coerced-2D trailing block [axis, rank) before.
FailureOr<SmallVector<int64_t>> softmaxAxes(NodeImporter &n) {
  int64_t rank = n.inputRank(0);
  bool modern = n.opset() >= 13;
  FailureOr<int64_t> axis = n.normalizeAxis(n.intAttr("axis", modern ? -1 : 1), rank);
  if (failed(axis))
    return failure();
  SmallVector<int64_t> axes;
  for (int64_t i = *axis; i < (modern ? *axis + 1 : rank); ++i)
    axes.push_back(i);
  return axes;
}

/// Softmax (or log-softmax) of `x` over `axes`: the max is subtracted first, then
/// exp(x - max) is divided by its sum (or log of the sum subtracted).
Value buildSoftmax(OpBuilder &b, Location loc, Value x, llvm::ArrayRef<int64_t> axes,
                   bool logarithmic) {
  auto xType = cast<RankedTensorType>(x.getType());
  Type type = xType.getElementType();
  llvm::ArrayRef<int64_t> shape = xType.getShape();
  Value max = buildReduction(b, loc, x, axes, true, lowestValue(b, loc, type, false),
                             [](OpBuilder &nb, Location nloc, Value e, Value acc) -> Value {
                               return arith::MaximumFOp::create(nb, nloc, e, acc);
                             });
  Value shifted = buildElementwise(b, loc, shape, type, {x, max},
                                   [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                                     return arith::SubFOp::create(nb, nloc, args[0], args[1]);
                                   });
  Value exps = buildElementwise(b, loc, shape, type, shifted,
                                [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                                  return math::ExpOp::create(nb, nloc, args[0]);
                                });
  Value sum = buildReduction(b, loc, exps, axes, true, scalarConstant(b, loc, type, 0),
                             [](OpBuilder &nb, Location nloc, Value e, Value acc) -> Value {
                               return arith::AddFOp::create(nb, nloc, e, acc);
                             });
  if (logarithmic)
    return buildElementwise(b, loc, shape, type, {shifted, sum},
                            [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                              return arith::SubFOp::create(
                                  nb, nloc, args[0], math::LogOp::create(nb, nloc, args[1]));
                            });
  return buildElementwise(b, loc, shape, type, {exps, sum},
                          [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                            return arith::DivFOp::create(nb, nloc, args[0], args[1]);
                          });
}

LogicalResult lowerSoftmax(NodeImporter &n, bool logarithmic) {
  if (!isFloat(n.inputElementType(0)))
    return n.unsupported("input type " + onnxTypeName(n.inputOnnxType(0)));
  FailureOr<SmallVector<int64_t>> axes = softmaxAxes(n);
  if (failed(axes))
    return failure();
  Value x = n.input(0);
  if (!x)
    return failure();
  return n.setOutput(0, buildSoftmax(n.builder(), n.loc(), x, *axes, logarithmic));
}

LogicalResult lowerHardmax(NodeImporter &n) {
  FailureOr<SmallVector<int64_t>> axes = softmaxAxes(n);
  if (failed(axes))
    return failure();
  if (axes->size() != 1)
    return n.unsupported("Hardmax over several axes (opset < 13 with axis < rank - 1)");
  Value x = n.input(0);
  if (!x)
    return failure();
  OpBuilder &b = n.builder();
  Location loc = n.loc();
  int64_t axis = (*axes)[0];
  Type type = n.inputElementType(0);
  Value argmax = buildArgExtreme(b, loc, x, axis, true, true, false, n.inputIsUnsigned(0));
  return n.setOutput(0, buildElementwise(b, loc, n.inputShape(0), type, argmax,
                                         [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                                           Value index = arith::IndexCastOp::create(
                                               nb, nloc, nb.getI64Type(), linalg::IndexOp::create(nb, nloc, axis));
                                           Value hit = arith::CmpIOp::create(nb, nloc, arith::CmpIPredicate::eq, index, args[0]);
                                           return arith::SelectOp::create(nb, nloc, hit, scalarConstant(nb, nloc, type, 1),
                                                                          scalarConstant(nb, nloc, type, 0));
                                         }));
}

/// CumSum as a masked reduction: out[.., i, ..] = sum_j x[.., j, ..] where j <= i
/// (j < i exclusive; reversed with reverse=1).
LogicalResult lowerCumSum(NodeImporter &n) {
  FailureOr<std::vector<int64_t>> axisInput = n.constantInts(1, "axis");
  if (failed(axisInput))
    return failure();
  int64_t rank = n.inputRank(0);
  FailureOr<int64_t> axis = n.normalizeAxis(axisInput->at(0), rank);
  if (failed(axis))
    return failure();
  bool exclusive = n.intAttr("exclusive", 0) != 0, reverse = n.intAttr("reverse", 0) != 0;
  Value x = n.input(0);
  if (!x)
    return failure();
  OpBuilder &b = n.builder();
  Location loc = n.loc();
  MLIRContext *context = b.getContext();
  Type type = n.inputElementType(0);
  SmallVector<AffineExpr> inExprs;
  for (int64_t i = 0; i < rank; ++i)
    inExprs.push_back(getAffineDimExpr(i == *axis ? rank : i, context));
  AffineMap inMap = AffineMap::get(rank + 1, 0, inExprs, context);
  AffineMap outMap = AffineMap::getMultiDimIdentityMap(rank + 1, context).getMajorSubMap(rank);
  SmallVector<utils::IteratorType> iterators(rank, utils::IteratorType::parallel);
  iterators.push_back(utils::IteratorType::reduction);
  Value init = filledTensor(b, loc, n.inputShape(0), scalarConstant(b, loc, type, 0));
  auto predicate = reverse ? (exclusive ? arith::CmpIPredicate::ugt : arith::CmpIPredicate::uge)
                           : (exclusive ? arith::CmpIPredicate::ult : arith::CmpIPredicate::ule);
  return n.setOutput(
      0, buildGeneric(b, loc, init, x, {inMap, outMap}, iterators,
                      [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                        Value i = linalg::IndexOp::create(nb, nloc, *axis);
                        Value j = linalg::IndexOp::create(nb, nloc, rank);
                        Value take = arith::CmpIOp::create(nb, nloc, predicate, j, i);
                        Value term = arith::SelectOp::create(nb, nloc, take, args[0],
                                                             scalarConstant(nb, nloc, type, 0));
                        return add(nb, nloc, term, args[1]);
                      }));
}

/// Which classes a loss picks: the [N, C, d1..dk] scores, the [N, d1..dk] targets and
/// the optional [C] class weights of NegativeLogLikelihoodLoss and
/// SoftmaxCrossEntropyLoss.
struct LossOperands {
  Value scores, target, weight;
};

/// Checks the operand shapes of a loss node (scores, target and optional weight are
/// inputs 0, 1 and 2) and materializes them.
FailureOr<LossOperands> lossOperands(NodeImporter &n) {
  llvm::ArrayRef<int64_t> scores = n.inputShape(0), target = n.inputShape(1);
  if (scores.size() < 2)
    return n.error() << "expects N x C x d1..dk scores", failure();
  if (!isFloat(n.inputElementType(0)))
    return (void)n.unsupported("input type " + onnxTypeName(n.inputOnnxType(0))), failure();
  SmallVector<int64_t> expected = {scores[0]};
  expected.append(scores.begin() + 2, scores.end());
  if (target != llvm::ArrayRef<int64_t>(expected))
    return n.error() << "target shape does not match the scores' N x d1..dk", failure();
  if (!isa<IntegerType>(n.inputElementType(1)))
    return (void)n.unsupported("target type " + onnxTypeName(n.inputOnnxType(1))), failure();
  if (n.hasInput(2) && n.inputShape(2) != llvm::ArrayRef<int64_t>(scores[1]))
    return n.error() << "weight must have one element per class", failure();
  LossOperands operands{n.input(0), n.input(1), n.hasInput(2) ? n.input(2) : Value()};
  if (!operands.scores || !operands.target || (n.hasInput(2) && !operands.weight))
    return failure();
  return operands;
}

/// For every [n, d1..dk] position, the class its target names, picked from
/// `perClass(class scalars...)` by a one-hot select while reducing over the classes
/// (an index an indexing map cannot express). Positions whose target is
/// `ignoreIndex` pick 0. `classInputs` are read at [n, c, d1..dk] ([C] tensors at [c]).
Value pickTargetClass(OpBuilder &b, Location loc, Value target, ValueRange classInputs,
                      std::optional<int64_t> ignoreIndex, Type resultType,
                      llvm::function_ref<Value(OpBuilder &, Location, ValueRange)> perClass) {
  MLIRContext *context = b.getContext();
  llvm::ArrayRef<int64_t> positions = cast<RankedTensorType>(target.getType()).getShape();
  int64_t rank = positions.size(); // loops: n, d1..dk, then c (reduction)
  AffineExpr c = getAffineDimExpr(rank, context);
  AffineMap positionMap =
      AffineMap::getMultiDimIdentityMap(rank + 1, context).getMajorSubMap(rank);
  SmallVector<AffineMap> maps = {positionMap};
  for (Value input : classInputs) {
    if (cast<RankedTensorType>(input.getType()).getRank() == 1) {
      maps.push_back(AffineMap::get(rank + 1, 0, c, context));
      continue;
    }
    SmallVector<AffineExpr> exprs = {getAffineDimExpr(0, context), c};
    for (int64_t i = 1; i < rank; ++i)
      exprs.push_back(getAffineDimExpr(i, context));
    maps.push_back(AffineMap::get(rank + 1, 0, exprs, context));
  }
  maps.push_back(positionMap);
  SmallVector<utils::IteratorType> iterators(rank, utils::IteratorType::parallel);
  iterators.push_back(utils::IteratorType::reduction);
  SmallVector<Value> inputs = {target};
  llvm::append_range(inputs, classInputs);
  Value init = filledTensor(b, loc, positions, scalarConstant(b, loc, resultType, 0));
  return buildGeneric(
      b, loc, init, inputs, maps, iterators,
      [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
        Type i64 = nb.getI64Type();
        Value t = convertScalar(nb, nloc, args[0], i64, false, false);
        Value cls = arith::IndexCastOp::create(nb, nloc, i64, linalg::IndexOp::create(nb, nloc, rank));
        Value hit = arith::CmpIOp::create(nb, nloc, arith::CmpIPredicate::eq, t, cls);
        if (ignoreIndex) {
          Value kept = arith::CmpIOp::create(nb, nloc, arith::CmpIPredicate::ne, t,
                                             scalarConstant(nb, nloc, i64, *ignoreIndex));
          hit = arith::AndIOp::create(nb, nloc, hit, kept);
        }
        Value value = perClass(nb, nloc, args.drop_front().drop_back());
        return arith::SelectOp::create(nb, nloc, hit, value, args.back());
      });
}

/// The negative log-likelihood of `logProbs` ([N, C, d1..dk]) at the target classes,
/// weighted per class, then reduced ("none", "sum" or "mean": the sum divided by the
/// total weight of the positions not ignored).
FailureOr<Value> buildNllLoss(NodeImporter &n, Value logProbs, const LossOperands &operands) {
  std::string reduction = n.stringAttr("reduction", "mean");
  if (reduction != "none" && reduction != "sum" && reduction != "mean")
    return (void)n.unsupported("reduction '" + reduction + "'"), failure();
  std::optional<int64_t> ignoreIndex;
  if (n.hasAttr("ignore_index"))
    ignoreIndex = n.intAttr("ignore_index", 0);
  OpBuilder &b = n.builder();
  Location loc = n.loc();
  auto type = cast<RankedTensorType>(logProbs.getType());
  Type element = type.getElementType();
  int64_t numClasses = type.getDimSize(1);
  SmallVector<Value> classInputs = {logProbs};
  if (operands.weight)
    classInputs.push_back(operands.weight);
  Value loss = pickTargetClass(b, loc, operands.target, classInputs, ignoreIndex,
                               element, [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                                 Value negated = arith::NegFOp::create(nb, nloc, args[0]);
                                 if (args.size() == 1)
                                   return negated;
                                 return arith::MulFOp::create(nb, nloc, negated, args[1]);
                               });
  if (reduction == "none")
    return loss;
  SmallVector<int64_t> all;
  for (int64_t i = 0, e = cast<RankedTensorType>(loss.getType()).getRank(); i < e; ++i)
    all.push_back(i);
  auto sumAll = [&](Value v) {
    return buildReduction(b, loc, v, all, false, scalarConstant(b, loc, element, 0),
                          [](OpBuilder &nb, Location nloc, Value e, Value acc) -> Value {
                            return arith::AddFOp::create(nb, nloc, e, acc);
                          });
  };
  Value total = sumAll(loss);
  if (reduction == "sum")
    return total;
  // The weight of each position's target class (1 without weights), 0 when ignored.
  Value classWeights = operands.weight ? operands.weight
                                       : filledTensor(b, loc, {numClasses},
                                                      scalarConstant(b, loc, element, 1));
  Value weights = pickTargetClass(b, loc, operands.target, classWeights, ignoreIndex, element,
                                  [](OpBuilder &, Location, ValueRange args) { return args[0]; });
  return buildElementwise(b, loc, {}, element, {total, sumAll(weights)},
                          [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                            return arith::DivFOp::create(nb, nloc, args[0], args[1]);
                          });
}

LogicalResult lowerNegativeLogLikelihoodLoss(NodeImporter &n) {
  FailureOr<LossOperands> operands = lossOperands(n);
  if (failed(operands))
    return failure();
  FailureOr<Value> loss = buildNllLoss(n, operands->scores, *operands);
  if (failed(loss))
    return failure();
  return n.setOutput(0, *loss);
}

/// SoftmaxCrossEntropyLoss: the NLL loss of log-softmax over the classes; the optional
/// second output is that log-softmax.
LogicalResult lowerSoftmaxCrossEntropyLoss(NodeImporter &n) {
  FailureOr<LossOperands> operands = lossOperands(n);
  if (failed(operands))
    return failure();
  Value logProbs = buildSoftmax(n.builder(), n.loc(), operands->scores, {1}, true);
  FailureOr<Value> loss = buildNllLoss(n, logProbs, *operands);
  if (failed(loss) || failed(n.setOutput(0, *loss)))
    return failure();
  if (n.hasOutput(1))
    return n.setOutput(1, logProbs);
  return success();
}

} // namespace

void kiln::onnx_import::addReductionLowerings(OpLoweringTable &table) {
  table["ReduceSum"] = [](NodeImporter &n) { return lowerReduce(n, ReduceKind::Sum); };
  table["ReduceMean"] = [](NodeImporter &n) { return lowerReduce(n, ReduceKind::Mean); };
  table["ReduceMax"] = [](NodeImporter &n) { return lowerReduce(n, ReduceKind::Max); };
  table["ReduceMin"] = [](NodeImporter &n) { return lowerReduce(n, ReduceKind::Min); };
  table["ReduceProd"] = [](NodeImporter &n) { return lowerReduce(n, ReduceKind::Prod); };
  table["ReduceL1"] = [](NodeImporter &n) { return lowerReduce(n, ReduceKind::L1); };
  table["ReduceL2"] = [](NodeImporter &n) { return lowerReduce(n, ReduceKind::L2); };
  table["ReduceLogSum"] = [](NodeImporter &n) { return lowerReduce(n, ReduceKind::LogSum); };
  table["ReduceLogSumExp"] = [](NodeImporter &n) {
    return lowerReduce(n, ReduceKind::LogSumExp);
  };
  table["ReduceSumSquare"] = [](NodeImporter &n) {
    return lowerReduce(n, ReduceKind::SumSquare);
  };
  table["ArgMax"] = [](NodeImporter &n) { return lowerArgExtreme(n, true); };
  table["ArgMin"] = [](NodeImporter &n) { return lowerArgExtreme(n, false); };
  table["Softmax"] = [](NodeImporter &n) { return lowerSoftmax(n, false); };
  table["LogSoftmax"] = [](NodeImporter &n) { return lowerSoftmax(n, true); };
  table["Hardmax"] = lowerHardmax;
  table["CumSum"] = lowerCumSum;
  table["NegativeLogLikelihoodLoss"] = lowerNegativeLogLikelihoodLoss;
  table["SoftmaxCrossEntropyLoss"] = lowerSoftmaxCrossEntropyLoss;
}
