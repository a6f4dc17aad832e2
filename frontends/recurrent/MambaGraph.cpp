// Mamba's forward pass (llama.cpp's llm_build_mamba / build_mamba_layer) from linalg
// and kiln ops: a full-sequence @main from a zero state, or @prefill and @decode over
// the recurrent state.
#include "frontends/recurrent/MambaGraph.h"

#include "frontends/common/LinalgBuilder.h"
#include "frontends/common/TensorSizeLimit.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringMap.h"

using namespace mlir;

namespace kiln::recurrent {
namespace {

/// The tokens compiled per forward pass when the caller does not choose.
constexpr int64_t kDefaultSequenceLength = 64;

/// llama.cpp's softplus threshold (ggml_ssm_scan): above it, softplus(x) is x in f32.
constexpr float kSoftplusLinearAbove = 20.0f;

class GraphBuilder {
public:
  GraphBuilder(MLIRContext &context, Location fileLoc, const MambaConfig &config,
               decoder::WeightSource &source)
      : context(context), builder(&context), build(builder), fileLoc(fileLoc), config(config),
        source(source) {}

  OwningOpRef<ModuleOp> run(const decoder::DecoderOptions &options);

private:
  Location named(const std::string &name) {
    return NameLoc::get(builder.getStringAttr(name), fileLoc);
  }
  FailureOr<Value> floatWeight(StringRef name, ArrayRef<int64_t> shape);
  /// Columns [offset, offset + width) of a [rows, columns] tensor.
  Value columns(Value value, int64_t offset, int64_t width, Location loc);
  /// x + bias, the bias a vector over x's columns.
  Value addBias(Value x, Value bias, Location loc);
  /// One Mamba block on x [S, E]; `state` is this block's {conv window, scan state},
  /// replaced by the new ones; `length` (null: all S) the rows that advance it.
  FailureOr<Value> block(int64_t index, Value x, MutableArrayRef<Value> state, Value length);
  /// Adds `func.func @name` over `sequence` tokens (see buildMamba).
  LogicalResult buildFunction(StringRef name, bool lastRowOnly, bool carriesState);

  MLIRContext &context;
  OpBuilder builder;
  kiln::LinalgBuilder build;
  Location fileLoc;
  const MambaConfig &config;
  decoder::WeightSource &source;
  int64_t sequence = 0;
  llvm::StringMap<Value> weights; // this function's weight values
};

FailureOr<Value> GraphBuilder::floatWeight(StringRef name, ArrayRef<int64_t> shape) {
  if (Value existing = weights.lookup(name))
    return existing;
  FailureOr<Value> value = source.load(builder, name, shape);
  if (failed(value))
    return failure();
  Value f32 = build.toF32(*value, named(name.str()));
  weights[name] = f32;
  return f32;
}

Value GraphBuilder::columns(Value value, int64_t offset, int64_t width, Location loc) {
  auto type = cast<RankedTensorType>(value.getType());
  auto result = RankedTensorType::get({type.getDimSize(0), width}, type.getElementType());
  return tensor::ExtractSliceOp::create(
      builder, loc, result, value, ValueRange{}, ValueRange{}, ValueRange{},
      builder.getDenseI64ArrayAttr({0, offset}),
      builder.getDenseI64ArrayAttr({type.getDimSize(0), width}),
      builder.getDenseI64ArrayAttr({1, 1}));
}

Value GraphBuilder::addBias(Value x, Value bias, Location loc) {
  auto type = cast<RankedTensorType>(x.getType());
  AffineExpr t, c;
  bindDims(&context, t, c);
  SmallVector<AffineMap> maps{AffineMap::get(2, 0, {t, c}, &context),
                              AffineMap::get(2, 0, {c}, &context)};
  return build.generic({x, bias}, maps, type.getShape(),
                       [](OpBuilder &b, Location l, ValueRange args) -> Value {
                         return arith::AddFOp::create(b, l, args[0], args[1]);
                       },
                       loc);
}

/// x * sigmoid(x) = x / (1 + exp(-x)).
Value silu(OpBuilder &b, Location l, Value x) {
  Value one = arith::ConstantOp::create(b, l, b.getF32FloatAttr(1));
  Value denominator =
      arith::AddFOp::create(b, l, one, math::ExpOp::create(b, l, arith::NegFOp::create(b, l, x)));
  return arith::DivFOp::create(b, l, x, denominator);
}

FailureOr<Value> GraphBuilder::block(int64_t index, Value x, MutableArrayRef<Value> state,
                                     Value length) {
  const MambaConfig &c = config;
  std::string prefix = "blk." + std::to_string(index) + ".";
  auto name = [&](StringRef tensor) { return prefix + tensor.str(); };
  int64_t inner = c.inner, rank = c.timeStepRank, states = c.stateSize;
  FailureOr<Value> norm = floatWeight(name("attn_norm.weight"), {c.embedding});
  FailureOr<Value> wIn = floatWeight(name("ssm_in.weight"), {2 * inner, c.embedding});
  FailureOr<Value> wConv = floatWeight(name("ssm_conv1d.weight"), {inner, c.convKernel});
  FailureOr<Value> bConv = floatWeight(name("ssm_conv1d.bias"), {inner});
  FailureOr<Value> wX = floatWeight(name("ssm_x.weight"), {rank + 2 * states, inner});
  FailureOr<Value> wDt = floatWeight(name("ssm_dt.weight"), {inner, rank});
  FailureOr<Value> bDt = floatWeight(name("ssm_dt.bias"), {inner});
  FailureOr<Value> a = floatWeight(name("ssm_a"), {inner, states});
  FailureOr<Value> d = floatWeight(name("ssm_d"), {inner});
  FailureOr<Value> wOut = floatWeight(name("ssm_out.weight"), {c.embedding, inner});
  if (failed(norm) || failed(wIn) || failed(wConv) || failed(bConv) || failed(wX) ||
      failed(wDt) || failed(bDt) || failed(a) || failed(d) || failed(wOut))
    return failure();

  Location loc = named(prefix + "ssm");
  Value h = RmsNormOp::create(builder, loc, x, *norm,
                              builder.getF32FloatAttr(float(c.normEpsilon)));
  // The input projection: x and the gate z side by side.
  Value xz = build.matmulTransposed(h, *wIn, loc);
  Value xs = columns(xz, 0, inner, loc), z = columns(xz, inner, inner, loc);
  // The causal convolution over the previous d_conv - 1 rows, its bias and SiLU.
  auto conv = CausalConv1dOp::create(builder, loc, xs, state[0], *wConv, length);
  state[0] = conv.getNewWindow();
  Value u = build.elementwise(addBias(conv.getResult(), *bConv, loc), loc,
                              [](OpBuilder &b, Location l, ValueRange args) {
                                return silu(b, l, args[0]);
                              });
  // The input-dependent step, B and C; the step through its projection and softplus.
  Value dbc = build.matmulTransposed(u, *wX, loc);
  Value dt = addBias(build.matmulTransposed(columns(dbc, 0, rank, loc), *wDt, loc), *bDt, loc);
  dt = build.elementwise(dt, loc, [](OpBuilder &b, Location l, ValueRange args) -> Value {
    Value v = args[0];
    Value limit = arith::ConstantOp::create(b, l, b.getF32FloatAttr(kSoftplusLinearAbove));
    Value soft = math::Log1pOp::create(b, l, math::ExpOp::create(b, l, v));
    Value linear = arith::CmpFOp::create(b, l, arith::CmpFPredicate::OGT, v, limit);
    return arith::SelectOp::create(b, l, linear, v, soft);
  });
  Value bs = columns(dbc, rank, states, loc), cs = columns(dbc, rank + states, states, loc);
  auto scan = SelectiveScanOp::create(builder, loc, u, dt, *a, bs, cs, state[1], length);
  state[1] = scan.getNewState();
  // y = (scan + u * D) * silu(z), then the output projection and the residual.
  AffineExpr t, col;
  bindDims(&context, t, col);
  AffineMap rows2 = AffineMap::get(2, 0, {t, col}, &context);
  Value gated = build.generic(
      {scan.getResult(), u, *d, z}, {rows2, rows2, AffineMap::get(2, 0, {col}, &context), rows2},
      {sequence, inner},
      [](OpBuilder &b, Location l, ValueRange args) -> Value {
        Value skip = arith::AddFOp::create(b, l, args[0], arith::MulFOp::create(b, l, args[1], args[2]));
        return arith::MulFOp::create(b, l, skip, silu(b, l, args[3]));
      },
      loc);
  return build.add(x, build.matmulTransposed(gated, *wOut, loc), loc);
}

OwningOpRef<ModuleOp> GraphBuilder::run(const decoder::DecoderOptions &options) {
  const MambaConfig &c = config;
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
      failed(checkTensorSize(fileLoc, "the scan's steps (--seq-len x inner size x state size)",
                             {sequence + 1, c.inner, c.stateSize})))
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

LogicalResult GraphBuilder::buildFunction(StringRef funcName, bool lastRowOnly,
                                          bool carriesState) {
  const MambaConfig &c = config;
  weights.clear();
  Type f32 = builder.getF32Type(), i64 = builder.getI64Type();
  auto logitsType = RankedTensorType::get({lastRowOnly ? 1 : sequence, c.vocab}, f32);
  SmallVector<Type> argTypes{RankedTensorType::get({sequence}, builder.getI32Type()),
                             RankedTensorType::get({sequence}, i64)},
      resultTypes{logitsType};
  SmallVector<std::string> argNames{"tokens", "positions"};
  if (lastRowOnly) {
    argTypes.push_back(RankedTensorType::get({1}, i64));
    argNames.push_back("logits_row");
  }
  auto convType = RankedTensorType::get({c.convKernel - 1, c.inner}, f32);
  auto ssmType = RankedTensorType::get({c.inner, c.stateSize}, f32);
  size_t firstState = argTypes.size();
  SmallVector<std::string> stateNames;
  if (carriesState) {
    for (int64_t i = 0; i < c.blocks; ++i) {
      stateNames.push_back("conv_state." + std::to_string(i));
      stateNames.push_back("ssm_state." + std::to_string(i));
      argTypes.append({convType, ssmType});
      resultTypes.append({convType, ssmType});
    }
  }
  auto func = func::FuncOp::create(builder, fileLoc, funcName,
                                   builder.getFunctionType(argTypes, resultTypes));
  for (auto [i, argName] : llvm::enumerate(argNames))
    func.setArgAttr(i, "kiln.name", builder.getStringAttr(argName));
  func.setResultAttr(0, "kiln.name", builder.getStringAttr("logits"));
  for (auto [i, state] : llvm::enumerate(stateNames)) {
    func.setArgAttr(firstState + i, "kiln.state", builder.getStringAttr(state));
    func.setResultAttr(1 + i, "kiln.state", builder.getStringAttr(state));
  }
  Block *body = func.addEntryBlock();
  builder.setInsertionPointToEnd(body);
  Value tokens = body->getArgument(0);
  SmallVector<Value> state;
  if (carriesState) {
    state.append(body->getArguments().begin() + firstState, body->getArguments().end());
  } else {
    // A full-sequence pass starts from the zero state.
    for (int64_t i = 0; i < c.blocks; ++i)
      for (RankedTensorType type : {convType, ssmType})
        state.push_back(arith::ConstantOp::create(
            builder, fileLoc, DenseElementsAttr::get(type, builder.getF32FloatAttr(0))));
  }
  // Prefill advances the state by the rows up to logits_row (the prompt's last token).
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
  weights["token_embd.weight"] = *embedding;
  Location embdLoc = named("token_embd.weight");
  Value x = build.toF32(GatherOp::create(builder, embdLoc, *embedding, tokens), embdLoc);
  for (int64_t i = 0; i < c.blocks; ++i) {
    FailureOr<Value> next =
        block(i, x, MutableArrayRef<Value>(state).slice(2 * size_t(i), 2), length);
    if (failed(next))
      return failure();
    x = *next;
  }
  // Without output.weight the output projection is tied to the token embedding.
  StringRef outputName =
      source.contains("output.weight") ? "output.weight" : "token_embd.weight";
  FailureOr<Value> outputNorm = floatWeight("output_norm.weight", {c.embedding});
  if (failed(outputNorm))
    return failure();
  Value output = outputName == "token_embd.weight"
                     ? build.toF32(*embedding, named("token_embd.weight"))
                     : Value();
  if (!output) {
    FailureOr<Value> loaded = floatWeight(outputName, {c.vocab, c.embedding});
    if (failed(loaded))
      return failure();
    output = *loaded;
  }
  Location loc = named(outputName.str());
  if (lastRowOnly)
    x = GatherOp::create(builder, loc, x, body->getArgument(2));
  Value normed =
      RmsNormOp::create(builder, loc, x, *outputNorm, builder.getF32FloatAttr(float(c.normEpsilon)));
  SmallVector<Value> results{build.matmulTransposed(normed, output, loc)};
  if (carriesState)
    results.append(state);
  func::ReturnOp::create(builder, loc, results);
  return success();
}

} // namespace

OwningOpRef<ModuleOp> buildMamba(MLIRContext &context, Location fileLoc, const MambaConfig &config,
                                 decoder::WeightSource &weights,
                                 const decoder::DecoderOptions &options) {
  context.loadDialect<KilnDialect, arith::ArithDialect, func::FuncDialect,
                      linalg::LinalgDialect, math::MathDialect, tensor::TensorDialect>();
  return GraphBuilder(context, fileLoc, config, weights).run(options);
}

} // namespace kiln::recurrent
