// The entry points, state and shared linalg pieces of the recurrent language models.
#include "frontends/recurrent/RecurrentGraph.h"

#include "frontends/common/TensorSizeLimit.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"

using namespace mlir;

namespace kiln::recurrent {
namespace {

/// The tokens compiled per forward pass when the caller does not choose.
constexpr int64_t kDefaultSequenceLength = 64;

} // namespace

Value f32Constant(OpBuilder &b, Location l, double value) {
  return arith::ConstantOp::create(b, l, b.getF32FloatAttr(float(value)));
}

Value sigmoid(OpBuilder &b, Location l, Value x) {
  Value denominator = arith::AddFOp::create(
      b, l, f32Constant(b, l, 1), math::ExpOp::create(b, l, arith::NegFOp::create(b, l, x)));
  return arith::DivFOp::create(b, l, f32Constant(b, l, 1), denominator);
}

Value silu(OpBuilder &b, Location l, Value x) {
  Value denominator = arith::AddFOp::create(
      b, l, f32Constant(b, l, 1), math::ExpOp::create(b, l, arith::NegFOp::create(b, l, x)));
  return arith::DivFOp::create(b, l, x, denominator);
}

RecurrentGraphBuilder::RecurrentGraphBuilder(MLIRContext &context, Location fileLoc,
                                             const RecurrentSizes &sizes,
                                             decoder::WeightSource &source)
    : context(context), builder(&context), build(builder), fileLoc(fileLoc), source(source),
      sizes(sizes) {}

RecurrentGraphBuilder::~RecurrentGraphBuilder() = default;

FailureOr<Value> RecurrentGraphBuilder::floatWeight(StringRef name, ArrayRef<int64_t> shape) {
  if (Value existing = weights.lookup(name))
    return existing;
  FailureOr<Value> value = source.load(builder, name, shape);
  if (failed(value))
    return failure();
  Value f32 = build.toF32(*value, named(name.str()));
  weights[name] = f32;
  return f32;
}

FailureOr<Value> RecurrentGraphBuilder::vectorWeight(StringRef name, ArrayRef<int64_t> shape) {
  FailureOr<Value> value = floatWeight(name, shape);
  if (failed(value) || shape.size() == 1)
    return value;
  ReassociationIndices all;
  for (size_t d = 0; d < shape.size(); ++d)
    all.push_back(int64_t(d));
  int64_t elements = 1;
  for (int64_t d : shape)
    elements *= d;
  return tensor::CollapseShapeOp::create(builder, named(name.str()),
                                         RankedTensorType::get({elements}, builder.getF32Type()),
                                         *value, ArrayRef<ReassociationIndices>{all})
      .getResult();
}

Value RecurrentGraphBuilder::columns(Value value, int64_t offset, int64_t width, Location loc) {
  auto type = cast<RankedTensorType>(value.getType());
  auto result = RankedTensorType::get({type.getDimSize(0), width}, type.getElementType());
  return tensor::ExtractSliceOp::create(
      builder, loc, result, value, ValueRange{}, ValueRange{}, ValueRange{},
      builder.getDenseI64ArrayAttr({0, offset}),
      builder.getDenseI64ArrayAttr({type.getDimSize(0), width}),
      builder.getDenseI64ArrayAttr({1, 1}));
}

Value RecurrentGraphBuilder::withVectors(Value x, ValueRange vectors, ScalarBody body,
                                         Location loc) {
  auto type = cast<RankedTensorType>(x.getType());
  AffineExpr t, c;
  bindDims(&context, t, c);
  SmallVector<Value> inputs{x};
  SmallVector<AffineMap> maps{AffineMap::get(2, 0, {t, c}, &context)};
  for (Value vector : vectors) {
    inputs.push_back(vector);
    maps.push_back(AffineMap::get(2, 0, {c}, &context));
  }
  return build.generic(inputs, maps, type.getShape(), body, loc);
}

Value RecurrentGraphBuilder::layerNorm(Value x, int64_t groups, double epsilon, Value weight,
                                       Value bias, Location loc) {
  auto type = cast<RankedTensorType>(x.getType());
  int64_t rows = type.getDimSize(0), width = type.getDimSize(1), size = width / groups;
  Type f32 = builder.getF32Type();
  Value grouped = tensor::ExpandShapeOp::create(
      builder, loc, RankedTensorType::get({rows, groups, size}, f32), x,
      ArrayRef<ReassociationIndices>{{0}, {1, 2}});
  AffineExpr t, g, s;
  bindDims(&context, t, g, s);
  AffineMap element = AffineMap::get(3, 0, {t, g, s}, &context),
            group = AffineMap::get(3, 0, {t, g}, &context);
  float inverse = 1.0f / float(size);
  Value sum = build.generic({grouped}, {element}, {rows, groups},
                            [](OpBuilder &b, Location l, ValueRange args) -> Value {
                              return arith::AddFOp::create(b, l, args[1], args[0]);
                            },
                            loc, /*reductionDims=*/1);
  // The variance about the mean (ggml_norm's two passes).
  Value squares = build.generic(
      {grouped, sum}, {element, group}, {rows, groups},
      [inverse](OpBuilder &b, Location l, ValueRange args) -> Value {
        Value mean = arith::MulFOp::create(b, l, args[1], f32Constant(b, l, inverse));
        Value d = arith::SubFOp::create(b, l, args[0], mean);
        return arith::AddFOp::create(b, l, args[2], arith::MulFOp::create(b, l, d, d));
      },
      loc, /*reductionDims=*/1);
  Value normed = build.generic(
      {grouped, sum, squares}, {element, group, group}, {rows, groups, size},
      [inverse, epsilon](OpBuilder &b, Location l, ValueRange args) -> Value {
        Value mean = arith::MulFOp::create(b, l, args[1], f32Constant(b, l, inverse));
        Value variance = arith::MulFOp::create(b, l, args[2], f32Constant(b, l, inverse));
        Value root = math::SqrtOp::create(
            b, l, arith::AddFOp::create(b, l, variance, f32Constant(b, l, epsilon)));
        return arith::DivFOp::create(b, l, arith::SubFOp::create(b, l, args[0], mean), root);
      },
      loc);
  Value flat = tensor::CollapseShapeOp::create(builder, loc, RankedTensorType::get({rows, width}, f32),
                                               normed, ArrayRef<ReassociationIndices>{{0}, {1, 2}});
  if (!weight)
    return flat;
  return withVectors(flat, {weight, bias}, [](OpBuilder &b, Location l, ValueRange args) -> Value {
    return arith::AddFOp::create(b, l, arith::MulFOp::create(b, l, args[0], args[1]), args[2]);
  }, loc);
}

OwningOpRef<ModuleOp> RecurrentGraphBuilder::run(const decoder::DecoderOptions &options) {
  const RecurrentSizes &c = sizes;
  if (options.contextLength < 0 || options.contextLength > c.contextLength)
    return emitError(fileLoc) << "context length " << options.contextLength
                              << " is outside the model's context of " << c.contextLength
                              << " tokens (" << c.contextLengthKey << ")",
           nullptr;
  // The state does not grow with the context, so only the model's limit bounds a pass.
  if (options.sequenceLength < 0 || options.sequenceLength > c.contextLength)
    return emitError(fileLoc) << "sequence length " << options.sequenceLength
                              << " is outside the model's context of " << c.contextLength
                              << " tokens (" << c.contextLengthKey << ")",
           nullptr;
  sequence = options.sequenceLength ? options.sequenceLength
                                    : std::min(c.contextLength, kDefaultSequenceLength);
  if (failed(checkTensorSize(fileLoc, "the logits tensor (--seq-len x vocabulary)",
                             {sequence, c.vocab})) ||
      failed(checkSizes(sequence)))
    return nullptr;

  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  builder.setInsertionPointToEnd(module->getBody());
  if (!options.kvCache) {
    if (failed(buildFunction("main", /*lastRowOnly=*/false, /*carriesState=*/false)))
      return nullptr;
  } else {
    if (failed(buildFunction("prefill", /*lastRowOnly=*/true, /*carriesState=*/true)))
      return nullptr;
    builder.setInsertionPointToEnd(module->getBody());
    sequence = 1;
    if (failed(buildFunction("decode", /*lastRowOnly=*/false, /*carriesState=*/true)))
      return nullptr;
  }
  if (failed(source.checkAllUsed()) || failed(verify(*module)))
    return nullptr;
  return module;
}

LogicalResult RecurrentGraphBuilder::buildFunction(StringRef funcName, bool lastRowOnly,
                                                   bool carriesState) {
  const RecurrentSizes &c = sizes;
  weights.clear();
  Type f32 = builder.getF32Type(), i64 = builder.getI64Type();
  std::vector<StateSlot> slots = stateSlots();
  SmallVector<RankedTensorType> slotTypes;
  for (const StateSlot &slot : slots)
    slotTypes.push_back(RankedTensorType::get(slot.shape, f32));
  SmallVector<Type> stateTypes;
  SmallVector<std::string> stateNames;
  if (carriesState) {
    for (int64_t i = 0; i < c.blocks; ++i)
      for (auto [slot, type] : llvm::zip(slots, slotTypes)) {
        stateNames.push_back(slot.name + "." + std::to_string(i));
        stateTypes.push_back(type);
      }
  }
  func::FuncOp func = decoder::buildEntryPoint(builder, fileLoc, funcName, sequence, c.vocab,
                                               lastRowOnly, stateTypes, stateNames);
  Block *body = &func.getBody().front();
  SmallVector<Value> state;
  if (carriesState) {
    llvm::append_range(state, body->getArguments().take_back(stateTypes.size()));
  } else {
    // A full-sequence pass starts from the zero state.
    for (int64_t i = 0; i < c.blocks; ++i)
      for (RankedTensorType type : slotTypes)
        state.push_back(arith::ConstantOp::create(
            builder, fileLoc, DenseElementsAttr::get(type, builder.getF32FloatAttr(0))));
  }
  // Prefill advances the state by the rows up to logits_row (the prompt's last token):
  // kiln-generate pads its last batch, and padding must not reach the state.
  Value length;
  if (lastRowOnly) {
    auto type = RankedTensorType::get({1}, i64);
    Value init = tensor::EmptyOp::create(builder, fileLoc, type.getShape(), i64);
    AffineMap identity = builder.getMultiDimIdentityMap(1);
    length = linalg::GenericOp::create(
                 builder, fileLoc, TypeRange{type}, ValueRange{body->getArgument(2)},
                 ValueRange{init}, ArrayRef<AffineMap>{identity, identity},
                 ArrayRef<utils::IteratorType>{utils::IteratorType::parallel},
                 [](OpBuilder &b, Location l, ValueRange args) {
                   Value one = arith::ConstantOp::create(b, l, b.getI64IntegerAttr(1));
                   linalg::YieldOp::create(b, l,
                                           arith::AddIOp::create(b, l, args[0], one).getResult());
                 })
                 .getResult(0);
  }

  FailureOr<Value> embedding = source.load(builder, "token_embd.weight", {c.vocab, c.embedding});
  if (failed(embedding))
    return failure();
  Location embdLoc = named("token_embd.weight");
  FailureOr<Value> x =
      embed(build.toF32(GatherOp::create(builder, embdLoc, *embedding, body->getArgument(0)),
                        embdLoc));
  if (failed(x))
    return failure();
  size_t perBlock = slots.size();
  for (int64_t i = 0; i < c.blocks; ++i) {
    x = block(i, *x, MutableArrayRef<Value>(state).slice(perBlock * size_t(i), perBlock), length);
    if (failed(x))
      return failure();
  }
  // Without output.weight the output projection is tied to the token embedding.
  bool tied = mayTieOutput() && !source.contains("output.weight");
  Value output;
  if (tied) {
    output = build.toF32(*embedding, embdLoc);
  } else {
    FailureOr<Value> loaded = floatWeight("output.weight", {c.vocab, c.embedding});
    if (failed(loaded))
      return failure();
    output = *loaded;
  }
  Location loc = named(tied ? "token_embd.weight" : "output.weight");
  Value last = *x;
  if (lastRowOnly)
    last = GatherOp::create(builder, loc, last, body->getArgument(2));
  FailureOr<Value> normed = finalNorm(last);
  if (failed(normed))
    return failure();
  SmallVector<Value> results{build.matmulTransposed(*normed, output, loc)};
  if (carriesState)
    results.append(state);
  func::ReturnOp::create(builder, loc, results);
  return success();
}

} // namespace kiln::recurrent
