// RWKV-6's blocks (llama.cpp's llm_build_rwkv6, build_rwkv6_time_mix and
// build_rwkv6_channel_mix) from linalg and kiln ops, on the recurrent models' shared
// entry points (RecurrentGraph).
#include "frontends/recurrent/Rwkv6Graph.h"

#include "frontends/common/TensorSizeLimit.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;

namespace kiln::recurrent {
namespace {

/// The group norm after the WKV (ggml_norm's epsilon in llama.cpp's time mix).
constexpr double kGroupNormEpsilon = 64e-5;

/// The five data-dependent lerps of the time mix, in the order of the fused weights.
enum Mix { MixW, MixK, MixV, MixR, MixG, kMixes };

class Rwkv6Builder : public RecurrentGraphBuilder {
public:
  Rwkv6Builder(MLIRContext &context, Location fileLoc, const Rwkv6Config &config,
               decoder::WeightSource &source)
      : RecurrentGraphBuilder(context, fileLoc, config, source), config(config) {}

private:
  int64_t heads() const { return config.embedding / config.headSize; }
  std::vector<StateSlot> stateSlots() const override {
    return {{"att_shift", {1, config.embedding}},
            {"ffn_shift", {1, config.embedding}},
            {"wkv_state", {heads(), config.headSize, config.headSize}}};
  }
  LogicalResult checkSizes(int64_t tokens) override {
    return checkTensorSize(fileLoc, "the WKV's steps (--seq-len x embedding x head size)",
                           {tokens + 1, config.embedding, config.headSize});
  }
  FailureOr<Value> norm(Value x, StringRef tensor) {
    FailureOr<Value> w = floatWeight((tensor + ".weight").str(), {config.embedding});
    FailureOr<Value> b = floatWeight((tensor + ".bias").str(), {config.embedding});
    if (failed(w) || failed(b))
      return failure();
    return layerNorm(x, 1, config.normEpsilon, *w, *b, named(tensor.str()));
  }
  FailureOr<Value> embed(Value x) override { return norm(x, "token_embd_norm"); }
  FailureOr<Value> finalNorm(Value x) override { return norm(x, "output_norm"); }
  bool mayTieOutput() const override { return false; }
  FailureOr<Value> block(int64_t index, Value x, MutableArrayRef<Value> state,
                         Value length) override;
  /// The previous token's row for each row of x [S, E] (the first from `shift`
  /// [1, E]): a causal convolution with taps (1, 0), whose new window is the last row
  /// that counts. Replaces `shift` with it.
  Value tokenShift(Value x, Value &shift, Value length, Location loc);
  /// x + (x_prev - x) * mix, the mix a vector [E] (an interpolation towards the
  /// previous token).
  Value lerp(Value x, Value previous, Value mix, Location loc);

  const Rwkv6Config &config;
};

Value Rwkv6Builder::tokenShift(Value x, Value &shift, Value length, Location loc) {
  int64_t e = config.embedding;
  auto type = RankedTensorType::get({e, 2}, builder.getF32Type());
  SmallVector<float> taps(size_t(2 * e), 0.0f);
  for (int64_t c = 0; c < e; ++c)
    taps[size_t(2 * c)] = 1.0f;
  Value weight = arith::ConstantOp::create(builder, loc, DenseElementsAttr::get(type, ArrayRef<float>(taps)));
  auto conv = CausalConv1dOp::create(builder, loc, x, shift, weight, length);
  shift = conv.getNewWindow();
  return conv.getResult();
}

Value Rwkv6Builder::lerp(Value x, Value previous, Value mix, Location loc) {
  AffineExpr t, c;
  bindDims(&context, t, c);
  AffineMap rows = AffineMap::get(2, 0, {t, c}, &context);
  return build.generic({x, previous, mix}, {rows, rows, AffineMap::get(2, 0, {c}, &context)},
                       {sequence, config.embedding},
                       [](OpBuilder &b, Location l, ValueRange args) -> Value {
                         Value delta = arith::SubFOp::create(b, l, args[1], args[0]);
                         return arith::AddFOp::create(b, l, args[0],
                                                      arith::MulFOp::create(b, l, delta, args[2]));
                       },
                       loc);
}

FailureOr<Value> Rwkv6Builder::block(int64_t index, Value x, MutableArrayRef<Value> state,
                                     Value length) {
  const Rwkv6Config &c = config;
  std::string prefix = "blk." + std::to_string(index) + ".";
  auto name = [&](StringRef tensor) { return prefix + tensor.str() + ".weight"; };
  int64_t e = c.embedding, mixRank = c.timeMixExtra, decayRank = c.timeDecayExtra;
  int64_t h = heads(), s = c.headSize;
  FailureOr<Value> lerpX = vectorWeight(name("time_mix_lerp_x"), {1, 1, e});
  FailureOr<Value> w1 = floatWeight(name("time_mix_w1"), {kMixes * mixRank, e});
  FailureOr<Value> w2 = floatWeight(name("time_mix_w2"), {kMixes, e, mixRank});
  FailureOr<Value> fused = floatWeight(name("time_mix_lerp_fused"), {kMixes, 1, 1, e});
  FailureOr<Value> first = floatWeight(name("time_mix_first"), {h, s});
  FailureOr<Value> decay = floatWeight(name("time_mix_decay"), {e});
  FailureOr<Value> decayW1 = floatWeight(name("time_mix_decay_w1"), {decayRank, e});
  FailureOr<Value> decayW2 = floatWeight(name("time_mix_decay_w2"), {e, decayRank});
  FailureOr<Value> wKey = floatWeight(name("time_mix_key"), {e, e});
  FailureOr<Value> wValue = floatWeight(name("time_mix_value"), {e, e});
  FailureOr<Value> wReceptance = floatWeight(name("time_mix_receptance"), {e, e});
  FailureOr<Value> wGate = floatWeight(name("time_mix_gate"), {e, e});
  FailureOr<Value> lnW = floatWeight(name("time_mix_ln"), {e});
  FailureOr<Value> lnB = floatWeight(prefix + "time_mix_ln.bias", {e});
  FailureOr<Value> wOut = floatWeight(name("time_mix_output"), {e, e});
  FailureOr<Value> lerpK = vectorWeight(name("channel_mix_lerp_k"), {1, 1, e});
  FailureOr<Value> lerpR = vectorWeight(name("channel_mix_lerp_r"), {1, 1, e});
  FailureOr<Value> ffKey = floatWeight(name("channel_mix_key"), {c.feedForward, e});
  FailureOr<Value> ffValue = floatWeight(name("channel_mix_value"), {e, c.feedForward});
  FailureOr<Value> ffReceptance = floatWeight(name("channel_mix_receptance"), {e, e});
  if (failed(lerpX) || failed(w1) || failed(w2) || failed(fused) || failed(first) ||
      failed(decay) || failed(decayW1) || failed(decayW2) || failed(wKey) || failed(wValue) ||
      failed(wReceptance) || failed(wGate) || failed(lnW) || failed(lnB) || failed(wOut) ||
      failed(lerpK) || failed(lerpR) || failed(ffKey) || failed(ffValue) || failed(ffReceptance))
    return failure();

  // Time mix.
  Location loc = named(prefix + "time_mix");
  FailureOr<Value> attNorm = norm(x, prefix + "attn_norm");
  if (failed(attNorm))
    return failure();
  Value previous = tokenShift(*attNorm, state[0], length, loc);
  // The five lerp amounts: tanh(lerp(x, lerp_x) W1) through each mix's W2, plus its
  // fused base.
  Value low = build.elementwise(build.matmulTransposed(lerp(*attNorm, previous, *lerpX, loc), *w1, loc),
                                loc, [](OpBuilder &b, Location l, ValueRange args) -> Value {
                                  return math::TanhOp::create(b, l, args[0]);
                                });
  AffineExpr m, t, col, d;
  bindDims(&context, m, t, col, d);
  Value amounts = build.generic(
      {low, *w2}, {AffineMap::get(4, 0, {t, m * mixRank + d}, &context),
                   AffineMap::get(4, 0, {m, col, d}, &context)},
      {kMixes, sequence, e},
      [](OpBuilder &b, Location l, ValueRange args) -> Value {
        return arith::AddFOp::create(b, l, args[2], arith::MulFOp::create(b, l, args[0], args[1]));
      },
      loc, /*reductionDims=*/1);
  Value fusedMix = tensor::CollapseShapeOp::create(
      builder, loc, RankedTensorType::get({kMixes, e}, builder.getF32Type()), *fused,
      ArrayRef<ReassociationIndices>{{0, 1, 2}, {3}});
  auto mixed = [&](int64_t which) {
    AffineExpr row, column;
    bindDims(&context, row, column);
    AffineExpr mix = getAffineConstantExpr(which, &context);
    AffineMap rows = AffineMap::get(2, 0, {row, column}, &context);
    return build.generic(
        {*attNorm, previous, amounts, fusedMix},
        {rows, rows, AffineMap::get(2, 0, {mix, row, column}, &context),
         AffineMap::get(2, 0, {mix, column}, &context)},
        {sequence, e},
        [](OpBuilder &b, Location l, ValueRange args) -> Value {
          Value delta = arith::SubFOp::create(b, l, args[1], args[0]);
          Value amount = arith::AddFOp::create(b, l, args[2], args[3]);
          return arith::AddFOp::create(b, l, args[0], arith::MulFOp::create(b, l, delta, amount));
        },
        loc);
  };
  auto headsOf = [&](Value value) -> Value {
    return tensor::ExpandShapeOp::create(builder, loc,
                                         RankedTensorType::get({sequence, h, s}, builder.getF32Type()),
                                         value, ArrayRef<ReassociationIndices>{{0}, {1, 2}});
  };
  Value r = headsOf(build.matmulTransposed(mixed(MixR), *wReceptance, loc));
  Value k = headsOf(build.matmulTransposed(mixed(MixK), *wKey, loc));
  Value v = headsOf(build.matmulTransposed(mixed(MixV), *wValue, loc));
  Value g = build.elementwise(build.matmulTransposed(mixed(MixG), *wGate, loc), loc,
                              [](OpBuilder &b, Location l, ValueRange args) {
                                return silu(b, l, args[0]);
                              });
  // The decay: exp(-exp(decay + tanh(x W1) W2)), in (0, 1).
  Value decayLow = build.elementwise(build.matmulTransposed(mixed(MixW), *decayW1, loc), loc,
                                     [](OpBuilder &b, Location l, ValueRange args) -> Value {
                                       return math::TanhOp::create(b, l, args[0]);
                                     });
  Value w = withVectors(build.matmulTransposed(decayLow, *decayW2, loc), {*decay},
                        [](OpBuilder &b, Location l, ValueRange args) -> Value {
                          Value logDecay = arith::AddFOp::create(b, l, args[0], args[1]);
                          return math::ExpOp::create(
                              b, l, arith::NegFOp::create(b, l, math::ExpOp::create(b, l, logDecay)));
                        },
                        loc);
  auto wkv = WkvOp::create(builder, loc, r, k, v, headsOf(w), *first, state[2], length);
  state[2] = wkv.getNewState();
  Value y = tensor::CollapseShapeOp::create(
      builder, loc, RankedTensorType::get({sequence, e}, builder.getF32Type()), wkv.getResult(),
      ArrayRef<ReassociationIndices>{{0}, {1, 2}});
  y = layerNorm(y, h, kGroupNormEpsilon, *lnW, *lnB, loc);
  y = build.elementwise({y, g}, loc, [](OpBuilder &b, Location l, ValueRange args) -> Value {
    return arith::MulFOp::create(b, l, args[0], args[1]);
  });
  Value ffnInput = build.add(build.matmulTransposed(y, *wOut, loc), x, loc);

  // Channel mix: sigmoid(r) * (relu(k)^2 V).
  loc = named(prefix + "channel_mix");
  FailureOr<Value> ffnNorm = norm(ffnInput, prefix + "attn_norm_2");
  if (failed(ffnNorm))
    return failure();
  Value ffnPrevious = tokenShift(*ffnNorm, state[1], length, loc);
  Value gate = build.elementwise(
      build.matmulTransposed(lerp(*ffnNorm, ffnPrevious, *lerpR, loc), *ffReceptance, loc), loc,
      [](OpBuilder &b, Location l, ValueRange args) { return sigmoid(b, l, args[0]); });
  Value key = build.elementwise(
      build.matmulTransposed(lerp(*ffnNorm, ffnPrevious, *lerpK, loc), *ffKey, loc), loc,
      [](OpBuilder &b, Location l, ValueRange args) -> Value {
        Value relu = arith::MaximumFOp::create(b, l, args[0], f32Constant(b, l, 0));
        return arith::MulFOp::create(b, l, relu, relu);
      });
  Value value = build.matmulTransposed(key, *ffValue, loc);
  bool rescale = c.rescaleEvery && (index + 1) % c.rescaleEvery == 0;
  return build.elementwise({gate, value, ffnInput}, loc,
                           [rescale](OpBuilder &b, Location l, ValueRange args) -> Value {
                             Value out = arith::AddFOp::create(
                                 b, l, arith::MulFOp::create(b, l, args[0], args[1]), args[2]);
                             if (!rescale)
                               return out;
                             return arith::MulFOp::create(b, l, out, f32Constant(b, l, 0.5));
                           });
}

} // namespace

OwningOpRef<ModuleOp> buildRwkv6(MLIRContext &context, Location fileLoc, const Rwkv6Config &config,
                                 decoder::WeightSource &weights,
                                 const decoder::DecoderOptions &options) {
  context.loadDialect<KilnDialect, arith::ArithDialect, func::FuncDialect,
                      linalg::LinalgDialect, math::MathDialect, tensor::TensorDialect>();
  return Rwkv6Builder(context, fileLoc, config, weights).run(options);
}

} // namespace kiln::recurrent
