// kiln.dispatch → Halide Funcs. Every tensor value becomes a Func over its index space;
// linalg.generic bodies become expressions, reductions become update definitions over
// an RDom, and tensor ops (reshapes, slices, concat, pad) become index arithmetic.
#include "backends/halide/DispatchLowering.h"

#include "backends/halide/HalideTypes.h"
#include "backends/halide/ScalarLowering.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/AffineExpr.h"
#include "mlir/IR/AffineMap.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using Halide::Expr;
using Halide::Func;
using Halide::Var;

namespace kiln::halide {

std::vector<Halide::Argument> LoweredKernel::arguments() const {
  return std::vector<Halide::Argument>(inputs.begin(), inputs.end());
}

namespace {

std::vector<Var> makeVars(size_t rank, const char *prefix) {
  std::vector<Var> vars;
  for (size_t i = 0; i < rank; ++i)
    vars.emplace_back(std::string(prefix) + std::to_string(i));
  return vars;
}

/// Halide orders dimensions innermost first; MLIR outermost first.
template <typename T>
std::vector<T> reversed(ArrayRef<T> values) {
  return std::vector<T>(values.rbegin(), values.rend());
}

std::vector<Expr> asExprs(ArrayRef<Var> vars) {
  return std::vector<Expr>(vars.begin(), vars.end());
}

Expr clampIndex(const Expr &index, int64_t extent) {
  return Halide::clamp(index, 0, static_cast<int>(extent - 1));
}

class KernelBuilder {
public:
  KernelBuilder(DispatchOp dispatch, StringRef name) : dispatch(dispatch) {
    kernel.name = name.str();
  }

  FailureOr<LoweredKernel> build();

private:
  LogicalResult lowerOp(Operation *op);
  LogicalResult lowerGeneric(linalg::GenericOp op);
  LogicalResult lowerConstant(arith::ConstantOp op);
  LogicalResult lowerReshape(Operation *op, Value source, Value result,
                             ArrayRef<ReassociationIndices> groups, bool expand);
  LogicalResult lowerExtractSlice(tensor::ExtractSliceOp op);
  LogicalResult lowerConcat(tensor::ConcatOp op);
  LogicalResult lowerPad(tensor::PadOp op);
  LogicalResult lowerGather(GatherOp op);

  /// The value of `tensor` at `index` (MLIR order).
  FailureOr<Expr> read(Operation *user, Value tensor, ArrayRef<Expr> index);
  FailureOr<Expr> scalar(Operation *user, Value value);
  /// Defines `result` as `f(vars) = body`, vars in MLIR order.
  void define(Value result, ArrayRef<Var> vars, const Expr &body);
  Func newFunc(Value result);
  std::vector<int64_t> shapeOf(Value value) {
    return cast<RankedTensorType>(value.getType()).getShape().vec();
  }

  DispatchOp dispatch;
  LoweredKernel kernel;
  llvm::DenseMap<Value, Func> tensors;
  llvm::DenseMap<Value, Expr> scalars;
  unsigned nextFunc = 0;
};

Func KernelBuilder::newFunc(Value result) {
  return Func(kernel.name + "_f" + std::to_string(nextFunc++));
}

void KernelBuilder::define(Value result, ArrayRef<Var> vars, const Expr &body) {
  Func f = newFunc(result);
  Halide::Type type = *toHalideType(cast<RankedTensorType>(result.getType()).getElementType());
  f(reversed(vars)) = Halide::cast(type, body);
  tensors[result] = f;
}

FailureOr<Expr> KernelBuilder::read(Operation *user, Value tensor, ArrayRef<Expr> index) {
  auto it = tensors.find(tensor);
  if (it == tensors.end()) {
    if (tensor.getDefiningOp<tensor::EmptyOp>())
      return user->emitOpError("reads the contents of a tensor.empty, which are undefined");
    return user->emitOpError("reads a tensor the Halide backend has no definition for");
  }
  return Expr(it->second(reversed(index)));
}

FailureOr<Expr> KernelBuilder::scalar(Operation *user, Value value) {
  auto it = scalars.find(value);
  if (it != scalars.end())
    return it->second;
  if (auto constant = value.getDefiningOp<arith::ConstantOp>())
    if (succeeded(lowerConstant(constant)))
      return scalars[value];
  return user->emitOpError("uses a scalar the Halide backend has no definition for");
}

FailureOr<LoweredKernel> KernelBuilder::build() {
  Block &body = dispatch.getBody().front();
  for (auto [i, arg] : llvm::enumerate(body.getArguments())) {
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    std::optional<Halide::Type> element =
        type ? toHalideType(type.getElementType()) : std::nullopt;
    if (!type || !type.hasStaticShape() || !element)
      return dispatch.emitOpError("input #")
             << i << " has type " << arg.getType()
             << ", which the Halide backend cannot consume (expected a statically shaped "
                "tensor of f16, bf16, f32, f64 or i1 to i64)";
    Halide::ImageParam param(*element, type.getRank(), kernel.name + "_in" + std::to_string(i));
    // Inputs are dense row-major buffers of exactly this shape.
    int64_t stride = 1;
    for (int d = 0; d < type.getRank(); ++d) {
      int64_t extent = type.getShape()[type.getRank() - 1 - d];
      param.dim(d).set_bounds(0, static_cast<int>(extent)).set_stride(static_cast<int>(stride));
      stride *= extent;
    }
    kernel.inputs.push_back(param);
    std::vector<Var> vars = makeVars(type.getRank(), "i");
    Func wrapper(kernel.name + "_in" + std::to_string(i) + "_f");
    if (vars.empty())
      wrapper() = param();
    else
      wrapper(vars) = param(vars);
    tensors[arg] = wrapper;
  }

  for (Operation &op : body.without_terminator())
    if (failed(lowerOp(&op)))
      return failure();

  for (auto [i, value] : llvm::enumerate(dispatch.getYield().getValues())) {
    auto type = dyn_cast<RankedTensorType>(value.getType());
    if (!type || !tensors.count(value))
      return dispatch.emitOpError("result #") << i << " is not a tensor the kernel computes";
    Func f = tensors[value];
    // An output Func must be distinct from the inputs and the other outputs.
    bool shared = isa<BlockArgument>(value) ||
                  llvm::any_of(kernel.outputs, [&](const Func &o) { return o.name() == f.name(); });
    if (shared) {
      std::vector<Var> vars = makeVars(type.getRank(), "o");
      Func copy(kernel.name + "_out" + std::to_string(i));
      copy(reversed(ArrayRef<Var>(vars))) = f(reversed(ArrayRef<Var>(vars)));
      f = copy;
    }
    for (int d = 0; d < type.getRank(); ++d)
      f.output_buffer().dim(d).set_bounds(
          0, static_cast<int>(type.getShape()[type.getRank() - 1 - d]));
    kernel.outputs.push_back(f);
    auto stage = llvm::find_if(kernel.stages, [&](const Stage &s) { return s.func.name() == f.name(); });
    if (stage != kernel.stages.end())
      stage->isOutput = true;
    else
      kernel.stages.push_back({f, type.getShape().vec(), /*isOutput=*/true});
  }
  return std::move(kernel);
}

LogicalResult KernelBuilder::lowerOp(Operation *op) {
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](linalg::GenericOp generic) { return lowerGeneric(generic); })
      .Case([&](arith::ConstantOp constant) { return lowerConstant(constant); })
      .Case([&](tensor::EmptyOp) { return success(); })
      .Case([&](tensor::ExpandShapeOp reshape) {
        return lowerReshape(reshape, reshape.getSrc(), reshape.getResult(),
                            reshape.getReassociationIndices(), /*expand=*/true);
      })
      .Case([&](tensor::CollapseShapeOp reshape) {
        return lowerReshape(reshape, reshape.getSrc(), reshape.getResult(),
                            reshape.getReassociationIndices(), /*expand=*/false);
      })
      .Case([&](tensor::ExtractSliceOp slice) { return lowerExtractSlice(slice); })
      .Case([&](tensor::ConcatOp concat) { return lowerConcat(concat); })
      .Case([&](tensor::PadOp pad) { return lowerPad(pad); })
      .Case([&](GatherOp gather) { return lowerGather(gather); })
      .Default([](Operation *op) {
        return op->emitOpError("is not supported by the Halide backend");
      });
}

LogicalResult KernelBuilder::lowerConstant(arith::ConstantOp op) {
  Attribute value = op.getValue();
  if (!isa<ShapedType>(op.getType())) {
    FailureOr<Expr> e = lowerScalarOp(op, {});
    if (failed(e))
      return failure();
    scalars[op.getResult()] = *e;
    return success();
  }
  auto splat = dyn_cast<SplatElementsAttr>(value);
  auto type = cast<RankedTensorType>(op.getType());
  if (!splat || !toHalideType(type.getElementType()))
    return op.emitOpError("is a non-splat tensor constant inside a kernel; it should be a "
                          "kernel input");
  Expr element;
  Halide::Type htype = *toHalideType(type.getElementType());
  if (splat.getElementType().isIntOrIndex())
    element = htype.is_bool() ? Halide::Internal::make_bool(splat.getSplatValue<APInt>().getBoolValue())
                              : Halide::Internal::make_const(htype, static_cast<int64_t>(
                                                   splat.getSplatValue<APInt>().getSExtValue()));
  else
    element = Halide::Internal::make_const(htype, splat.getSplatValue<APFloat>().convertToDouble());
  define(op.getResult(), makeVars(type.getRank(), "c"), element);
  return success();
}

/// Evaluates an affine expression of loop indices.
Expr evalAffine(AffineExpr expr, ArrayRef<Expr> dims) {
  switch (expr.getKind()) {
  case AffineExprKind::DimId:
    return dims[cast<AffineDimExpr>(expr).getPosition()];
  case AffineExprKind::Constant:
    return Expr(static_cast<int>(cast<AffineConstantExpr>(expr).getValue()));
  case AffineExprKind::SymbolId:
    llvm_unreachable("symbols are rejected before evaluation");
  default:
    break;
  }
  auto binary = cast<AffineBinaryOpExpr>(expr);
  Expr lhs = evalAffine(binary.getLHS(), dims), rhs = evalAffine(binary.getRHS(), dims);
  switch (expr.getKind()) {
  case AffineExprKind::Add:
    return lhs + rhs;
  case AffineExprKind::Mul:
    return lhs * rhs;
  case AffineExprKind::FloorDiv:
    return lhs / rhs; // Halide's integer division floors for positive divisors
  case AffineExprKind::Mod:
    return lhs % rhs;
  case AffineExprKind::CeilDiv:
    return (lhs + rhs - 1) / rhs;
  default:
    llvm_unreachable("unexpected affine expression kind");
  }
}

std::vector<Expr> applyMap(AffineMap map, ArrayRef<Expr> loops) {
  std::vector<Expr> index;
  for (AffineExpr result : map.getResults())
    index.push_back(evalAffine(result, loops));
  return index;
}

LogicalResult KernelBuilder::lowerGeneric(linalg::GenericOp op) {
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  if (llvm::any_of(ranges, ShapedType::isDynamic))
    return op.emitOpError("has dynamic loop bounds, which the Halide backend does not support");
  for (AffineMap map : op.getIndexingMapsArray())
    if (map.getNumSymbols() != 0)
      return op.emitOpError("has indexing maps with symbols, which are not supported");

  unsigned numLoops = op.getNumLoops();
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  std::vector<Var> vars = makeVars(numLoops, "d");
  std::vector<Expr> loops(numLoops);
  std::vector<Halide::Range> reductionRanges;
  SmallVector<unsigned> reductionDims;
  for (unsigned d = 0; d < numLoops; ++d) {
    if (iterators[d] == utils::IteratorType::reduction) {
      reductionDims.push_back(d);
      reductionRanges.emplace_back(0, static_cast<int>(ranges[d]));
    } else {
      loops[d] = vars[d];
    }
  }
  bool isReduction = !reductionDims.empty();
  Halide::RDom rdom;
  if (isReduction) {
    rdom = Halide::RDom(reductionRanges, op->getName().getStringRef().str());
    for (auto [i, d] : llvm::enumerate(reductionDims))
      loops[d] = rdom[i];
  }

  // Output coordinates: each output map must be a permutation of parallel loops.
  unsigned numOutputs = op.getNumDpsInits();
  std::vector<std::vector<Var>> outVars(numOutputs);
  for (unsigned j = 0; j < numOutputs; ++j) {
    AffineMap map = op.getMatchingIndexingMap(op.getDpsInitOperand(j));
    for (AffineExpr result : map.getResults()) {
      auto dim = dyn_cast<AffineDimExpr>(result);
      if (!dim || iterators[dim.getPosition()] == utils::IteratorType::reduction)
        return op.emitOpError("has an output indexing map that is not a projection of its "
                              "parallel loops, which the Halide backend does not support");
      outVars[j].push_back(vars[dim.getPosition()]);
    }
  }
  Func reductionFunc;
  if (isReduction) {
    if (numOutputs > 1 &&
        llvm::any_of(outVars, [&](const std::vector<Var> &v) {
          return v.size() != outVars[0].size() ||
                 !std::equal(v.begin(), v.end(), outVars[0].begin(),
                             [](const Var &a, const Var &b) { return a.same_as(b); });
        }))
      return op.emitOpError("is a multi-output reduction whose outputs are indexed "
                            "differently, which the Halide backend does not support");
    reductionFunc = newFunc(op->getResult(0));
    // The initial value comes from the outs operands; it must be defined before the
    // body (which reads the running value) is translated.
    std::vector<Expr> initial;
    for (unsigned j = 0; j < numOutputs; ++j) {
      AffineMap map = op.getMatchingIndexingMap(op.getDpsInitOperand(j));
      FailureOr<Expr> value = read(op, op.getDpsInitOperand(j)->get(), applyMap(map, loops));
      if (failed(value))
        return failure();
      initial.push_back(*value);
    }
    std::vector<Var> pure = reversed(ArrayRef<Var>(outVars[0]));
    if (numOutputs == 1)
      reductionFunc(pure) = initial[0];
    else
      reductionFunc(pure) = Halide::Tuple(initial);
  }

  Block &body = op.getRegion().front();
  llvm::DenseMap<Value, Expr> env;
  for (OpOperand *input : op.getDpsInputOperands()) {
    Value source = input->get();
    BlockArgument arg = body.getArgument(input->getOperandNumber());
    if (isa<RankedTensorType>(source.getType())) {
      FailureOr<Expr> value =
          read(op, source, applyMap(op.getMatchingIndexingMap(input), loops));
      if (failed(value))
        return failure();
      env[arg] = *value;
    } else {
      FailureOr<Expr> value = scalar(op, source);
      if (failed(value))
        return failure();
      env[arg] = *value;
    }
  }
  for (unsigned j = 0; j < numOutputs; ++j) {
    BlockArgument arg = body.getArgument(op.getNumDpsInputs() + j);
    if (arg.use_empty())
      continue;
    std::vector<Expr> at = asExprs(outVars[j]);
    if (isReduction) {
      Halide::FuncRef current = reductionFunc(reversed(ArrayRef<Expr>(at)));
      env[arg] = numOutputs > 1 ? Expr(current[j]) : Expr(current);
    } else {
      FailureOr<Expr> value =
          read(op, op.getDpsInitOperand(j)->get(),
               applyMap(op.getMatchingIndexingMap(op.getDpsInitOperand(j)), loops));
      if (failed(value))
        return failure();
      env[arg] = *value;
    }
  }

  for (Operation &inner : body.without_terminator()) {
    if (auto index = dyn_cast<linalg::IndexOp>(inner)) {
      env[index.getResult()] = loops[index.getDim()];
      continue;
    }
    std::vector<Expr> operands;
    for (Value operand : inner.getOperands()) {
      auto it = env.find(operand);
      if (it != env.end()) {
        operands.push_back(it->second);
        continue;
      }
      FailureOr<Expr> captured = scalar(&inner, operand);
      if (failed(captured))
        return failure();
      operands.push_back(*captured);
    }
    FailureOr<Expr> e = lowerScalarOp(&inner, operands);
    if (failed(e))
      return failure();
    env[inner.getResult(0)] = *e;
  }

  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  std::vector<Expr> values;
  for (auto [j, value] : llvm::enumerate(yield.getValues())) {
    auto it = env.find(value);
    Expr e;
    if (it != env.end()) {
      e = it->second;
    } else {
      FailureOr<Expr> captured = scalar(op, value);
      if (failed(captured))
        return failure();
      e = *captured;
    }
    Type element = cast<RankedTensorType>(op->getResult(j).getType()).getElementType();
    values.push_back(Halide::cast(*toHalideType(element), e));
  }

  if (!isReduction) {
    for (unsigned j = 0; j < numOutputs; ++j) {
      Func f = newFunc(op->getResult(j));
      f(reversed(ArrayRef<Var>(outVars[j]))) = values[j];
      tensors[op->getResult(j)] = f;
    }
    return success();
  }

  // One update per point of the reduction domain.
  std::vector<Var> lhs = reversed(ArrayRef<Var>(outVars[0]));
  std::vector<Expr> lhsExprs = asExprs(lhs);
  if (numOutputs == 1)
    reductionFunc(lhsExprs) = values[0];
  else
    reductionFunc(lhsExprs) = Halide::Tuple(values);
  std::vector<int64_t> shape = shapeOf(op->getResult(0));
  kernel.stages.push_back({reductionFunc, shape, /*isOutput=*/false});
  if (numOutputs == 1) {
    tensors[op->getResult(0)] = reductionFunc;
    return success();
  }
  for (unsigned j = 0; j < numOutputs; ++j) {
    Func element = newFunc(op->getResult(j));
    element(lhs) = reductionFunc(lhs)[j];
    tensors[op->getResult(j)] = element;
  }
  return success();
}

LogicalResult KernelBuilder::lowerReshape(Operation *op, Value source, Value result,
                                          ArrayRef<ReassociationIndices> groups, bool expand) {
  std::vector<int64_t> srcShape = shapeOf(source), dstShape = shapeOf(result);
  std::vector<Var> vars = makeVars(dstShape.size(), "r");
  std::vector<Expr> srcIndex(srcShape.size());
  // Each group pairs one dimension of the collapsed side with several of the expanded
  // side; a row-major reshape linearizes within the group.
  const std::vector<int64_t> &expandedShape = expand ? dstShape : srcShape;
  for (auto [g, group] : llvm::enumerate(groups)) {
    if (expand) {
      Expr linear = 0;
      for (int64_t d : group)
        linear = linear * static_cast<int>(expandedShape[d]) + vars[d];
      srcIndex[g] = linear;
    } else {
      Expr linear = vars[g];
      for (auto it = group.rbegin(); it != group.rend(); ++it) {
        int extent = static_cast<int>(expandedShape[*it]);
        srcIndex[*it] = linear % extent;
        linear = linear / extent;
      }
    }
  }
  FailureOr<Expr> value = read(op, source, srcIndex);
  if (failed(value))
    return failure();
  define(result, vars, *value);
  return success();
}

LogicalResult KernelBuilder::lowerExtractSlice(tensor::ExtractSliceOp op) {
  if (op.getSourceType().getNumDynamicDims() || ShapedType::isDynamicShape(op.getStaticOffsets()) ||
      ShapedType::isDynamicShape(op.getStaticSizes()) ||
      ShapedType::isDynamicShape(op.getStaticStrides()))
    return op.emitOpError("has dynamic offsets, sizes or strides, which are not supported");
  llvm::SmallBitVector dropped = op.getDroppedDims();
  std::vector<Var> vars = makeVars(op.getType().getRank(), "s");
  std::vector<Expr> srcIndex;
  unsigned next = 0;
  for (unsigned d = 0; d < op.getSourceType().getRank(); ++d) {
    Expr coordinate = dropped.test(d) ? Expr(0) : Expr(vars[next++]);
    srcIndex.push_back(static_cast<int>(op.getStaticOffsets()[d]) +
                       static_cast<int>(op.getStaticStrides()[d]) * coordinate);
  }
  FailureOr<Expr> value = read(op, op.getSource(), srcIndex);
  if (failed(value))
    return failure();
  define(op.getResult(), vars, *value);
  return success();
}

LogicalResult KernelBuilder::lowerConcat(tensor::ConcatOp op) {
  std::vector<Var> vars = makeVars(op.getType().getRank(), "k");
  uint64_t dim = op.getDim();
  // select(i >= start_k, input_k(i - start_k), <inputs before k>), reads clamped so
  // bounds inference never asks an input for rows it does not have.
  Expr result;
  int64_t start = 0;
  for (Value input : op.getInputs()) {
    int64_t extent = cast<RankedTensorType>(input.getType()).getDimSize(dim);
    if (extent == 0)
      continue;
    std::vector<Expr> index = asExprs(vars);
    index[dim] = clampIndex(vars[dim] - static_cast<int>(start), extent);
    FailureOr<Expr> value = read(op, input, index);
    if (failed(value))
      return failure();
    result = result.defined() ? Halide::select(vars[dim] >= static_cast<int>(start), *value, result)
                              : *value;
    start += extent;
  }
  define(op.getResult(), vars, result);
  return success();
}

LogicalResult KernelBuilder::lowerPad(tensor::PadOp op) {
  Value padValue = op.getConstantPaddingValue();
  if (!padValue)
    return op.emitOpError("pads with a non-constant value, which is not supported");
  if (ShapedType::isDynamicShape(op.getStaticLow()) || ShapedType::isDynamicShape(op.getStaticHigh()))
    return op.emitOpError("has dynamic padding, which is not supported");
  FailureOr<Expr> pad = scalar(op, padValue);
  if (failed(pad))
    return failure();
  std::vector<int64_t> srcShape = shapeOf(op.getSource());
  std::vector<Var> vars = makeVars(srcShape.size(), "p");
  std::vector<Expr> index;
  Expr inside = Halide::Internal::const_true();
  for (unsigned d = 0; d < srcShape.size(); ++d) {
    Expr shifted = vars[d] - static_cast<int>(op.getStaticLow()[d]);
    inside = inside && shifted >= 0 && shifted < static_cast<int>(srcShape[d]);
    index.push_back(clampIndex(shifted, srcShape[d]));
  }
  FailureOr<Expr> value = read(op, op.getSource(), index);
  if (failed(value))
    return failure();
  define(op.getResult(), vars, Halide::select(inside, *value, Halide::cast(value->type(), *pad)));
  return success();
}

LogicalResult KernelBuilder::lowerGather(GatherOp op) {
  auto table = cast<RankedTensorType>(op.getTable().getType());
  if (isa<QuantType>(table.getElementType()))
    return op.emitOpError("gathers from a quantized table, which the Halide backend does not "
                          "support yet");
  int64_t axis = op.getAxis();
  int64_t indexRank = cast<RankedTensorType>(op.getIndices().getType()).getRank();
  std::vector<Var> vars = makeVars(cast<RankedTensorType>(op.getType()).getRank(), "g");
  std::vector<Expr> indexAt(vars.begin() + axis, vars.begin() + axis + indexRank);
  FailureOr<Expr> index = read(op, op.getIndices(), indexAt);
  if (failed(index))
    return failure();
  std::vector<Expr> tableAt(vars.begin(), vars.begin() + axis);
  // Out-of-range indices are clamped, never read out of bounds.
  tableAt.push_back(clampIndex(Halide::cast(Halide::Int(32), *index), table.getDimSize(axis)));
  tableAt.insert(tableAt.end(), vars.begin() + axis + indexRank, vars.end());
  FailureOr<Expr> value = read(op, op.getTable(), tableAt);
  if (failed(value))
    return failure();
  define(op.getResult(), vars, *value);
  return success();
}

} // namespace

FailureOr<LoweredKernel> lowerDispatch(DispatchOp dispatch, StringRef name) {
  try {
    return KernelBuilder(dispatch, name).build();
  } catch (const Halide::Error &error) {
    return dispatch.emitOpError("could not be expressed in Halide: ") << error.what();
  }
}

} // namespace kiln::halide
