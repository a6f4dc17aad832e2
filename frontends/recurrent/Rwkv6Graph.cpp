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
  /// An RWKV-7 block (llama.cpp's build_rwkv7_time_mix and channel mix).
  FailureOr<Value> block7(int64_t index, Value x, MutableArrayRef<Value> state, Value length);
  /// The previous token's row for each row of x [S, E] (the first from `shift`
  /// [1, E]): a causal convolution with taps (1, 0), whose new window is the last row
  /// that counts. Replaces `shift` with it.
  Value tokenShift(Value x, Value &shift, Value length, Location loc);
  /// x + (x_prev - x) * mix, the mix a vector [E] (an interpolation towards the
  /// previous token).
  Value lerp(Value x, Value previous, Value mix, Location loc);

  const Rwkv6Config &config;
  /// RWKV-7: the first block's values, mixed into every later block's.
  Value firstValue;
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
  if (config.version == 7)
    return block7(index, x, state, length);
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

FailureOr<Value> Rwkv6Builder::block7(int64_t index, Value x, MutableArrayRef<Value> state,
                                      Value length) {
  const Rwkv6Config &c = config;
  if (index == 0)
    firstValue = Value(); // a new function
  std::string prefix = "blk." + std::to_string(index) + ".";
  auto name = [&](StringRef tensor) { return prefix + tensor.str() + ".weight"; };
  int64_t e = c.embedding, h = heads(), s = c.headSize;
  // llama.cpp sizes the first block's (unused) value-mix projections by the iclr rank.
  int64_t valueRank = index == 0 ? c.iclrRank : c.valueMixRank;
  FailureOr<Value> fused = floatWeight(name("time_mix_lerp_fused"), {6, 1, 1, e});
  FailureOr<Value> w0 = floatWeight(name("time_mix_w0"), {e});
  FailureOr<Value> w1 = floatWeight(name("time_mix_w1"), {c.decayRank, e});
  FailureOr<Value> w2 = floatWeight(name("time_mix_w2"), {e, c.decayRank});
  FailureOr<Value> a0 = floatWeight(name("time_mix_a0"), {e});
  FailureOr<Value> a1 = floatWeight(name("time_mix_a1"), {c.iclrRank, e});
  FailureOr<Value> a2 = floatWeight(name("time_mix_a2"), {e, c.iclrRank});
  FailureOr<Value> v0 = floatWeight(name("time_mix_v0"), {e});
  FailureOr<Value> v1 = floatWeight(name("time_mix_v1"), {valueRank, e});
  FailureOr<Value> v2 = floatWeight(name("time_mix_v2"), {e, valueRank});
  FailureOr<Value> g1 = floatWeight(name("time_mix_g1"), {c.gateRank, e});
  FailureOr<Value> g2 = floatWeight(name("time_mix_g2"), {e, c.gateRank});
  FailureOr<Value> kk = floatWeight(name("time_mix_k_k"), {e});
  FailureOr<Value> ka = floatWeight(name("time_mix_k_a"), {e});
  FailureOr<Value> rk = floatWeight(name("time_mix_r_k"), {e});
  FailureOr<Value> wKey = floatWeight(name("time_mix_key"), {e, e});
  FailureOr<Value> wValue = floatWeight(name("time_mix_value"), {e, e});
  FailureOr<Value> wReceptance = floatWeight(name("time_mix_receptance"), {e, e});
  FailureOr<Value> lnW = floatWeight(name("time_mix_ln"), {e});
  FailureOr<Value> lnB = floatWeight(prefix + "time_mix_ln.bias", {e});
  FailureOr<Value> wOut = floatWeight(name("time_mix_output"), {e, e});
  FailureOr<Value> lerpK = vectorWeight(name("channel_mix_lerp_k"), {1, 1, e});
  FailureOr<Value> ffKey = floatWeight(name("channel_mix_key"), {c.feedForward, e});
  FailureOr<Value> ffValue = floatWeight(name("channel_mix_value"), {e, c.feedForward});
  if (failed(fused) || failed(w0) || failed(w1) || failed(w2) || failed(a0) || failed(a1) ||
      failed(a2) || failed(v0) || failed(v1) || failed(v2) || failed(g1) || failed(g2) ||
      failed(kk) || failed(ka) || failed(rk) || failed(wKey) || failed(wValue) ||
      failed(wReceptance) || failed(lnW) || failed(lnB) || failed(wOut) || failed(lerpK) ||
      failed(ffKey) || failed(ffValue))
    return failure();

  Location loc = named(prefix + "time_mix");
  FailureOr<Value> attNorm = norm(x, prefix + "attn_norm");
  if (failed(attNorm))
    return failure();
  Value previous = tokenShift(*attNorm, state[0], length, loc);
  Value fusedMix = tensor::CollapseShapeOp::create(
      builder, loc, RankedTensorType::get({6, e}, builder.getF32Type()), *fused,
      ArrayRef<ReassociationIndices>{{0, 1, 2}, {3}});
  // The six static lerps, in the fused weight's order: r, w, k, v, a, g.
  auto mixed = [&](int64_t which) {
    AffineExpr row, column;
    bindDims(&context, row, column);
    AffineMap rows = AffineMap::get(2, 0, {row, column}, &context);
    return build.generic(
        {*attNorm, previous, fusedMix},
        {rows, rows, AffineMap::get(2, 0, {getAffineConstantExpr(which, &context), column}, &context)},
        {sequence, e},
        [](OpBuilder &b, Location l, ValueRange args) -> Value {
          Value delta = arith::SubFOp::create(b, l, args[1], args[0]);
          return arith::AddFOp::create(b, l, args[0], arith::MulFOp::create(b, l, delta, args[2]));
        },
        loc);
  };
  Value xr = mixed(0), xw = mixed(1), xk = mixed(2), xv = mixed(3), xa = mixed(4), xg = mixed(5);
  auto unary = [&](Value value, Value (*f)(OpBuilder &, Location, Value)) {
    return build.elementwise(value, loc, [f](OpBuilder &b, Location l, ValueRange args) {
      return f(b, l, args[0]);
    });
  };
  auto tanhOf = [](OpBuilder &b, Location l, Value v) -> Value { return math::TanhOp::create(b, l, v); };
  Value r = build.matmulTransposed(xr, *wReceptance, loc);
  // w = exp(-e^-0.5 sigmoid(w0 + tanh(x W1) W2)).
  Value w = withVectors(build.matmulTransposed(unary(build.matmulTransposed(xw, *w1, loc), tanhOf), *w2, loc),
                        {*w0},
                        [](OpBuilder &b, Location l, ValueRange args) -> Value {
                          Value sig = sigmoid(b, l, arith::AddFOp::create(b, l, args[0], args[1]));
                          return math::ExpOp::create(
                              b, l, arith::MulFOp::create(b, l, sig, f32Constant(b, l, -0.606531)));
                        },
                        loc);
  Value k = build.matmulTransposed(xk, *wKey, loc);
  Value v = build.matmulTransposed(xv, *wValue, loc);
  if (!firstValue) {
    firstValue = v;
  } else {
    // v += (v_first - v) * sigmoid(v0 + x V1 V2).
    Value mix = build.matmulTransposed(build.matmulTransposed(xv, *v1, loc), *v2, loc);
    v = build.generic({v, firstValue, mix, *v0},
                      {builder.getMultiDimIdentityMap(2), builder.getMultiDimIdentityMap(2),
                       builder.getMultiDimIdentityMap(2),
                       AffineMap::get(2, 0, {getAffineDimExpr(1, &context)}, &context)},
                      {sequence, e},
                      [](OpBuilder &b, Location l, ValueRange args) -> Value {
                        Value gate = sigmoid(b, l, arith::AddFOp::create(b, l, args[2], args[3]));
                        Value delta = arith::SubFOp::create(b, l, args[1], args[0]);
                        return arith::AddFOp::create(b, l, args[0], arith::MulFOp::create(b, l, delta, gate));
                      },
                      loc);
  }
  Value g = build.matmulTransposed(
      build.elementwise(build.matmulTransposed(xg, *g1, loc), loc,
                        [](OpBuilder &b, Location l, ValueRange args) { return sigmoid(b, l, args[0]); }),
      *g2, loc);
  Value a = withVectors(build.matmulTransposed(build.matmulTransposed(xa, *a1, loc), *a2, loc), {*a0},
                        [](OpBuilder &b, Location l, ValueRange args) {
                          return sigmoid(b, l, arith::AddFOp::create(b, l, args[0], args[1]));
                        },
                        loc);
  auto headsOf = [&](Value value) -> Value {
    return tensor::ExpandShapeOp::create(builder, loc,
                                         RankedTensorType::get({sequence, h, s}, builder.getF32Type()),
                                         value, ArrayRef<ReassociationIndices>{{0}, {1, 2}});
  };
  auto flat = [&](Value value) -> Value {
    return tensor::CollapseShapeOp::create(builder, loc,
                                           RankedTensorType::get({sequence, e}, builder.getF32Type()),
                                           value, ArrayRef<ReassociationIndices>{{0}, {1, 2}});
  };
  // kk = l2-normalized (k * k_k) per head; k = k + k * k_a * (a - 1).
  Value kScaled = withVectors(k, {*kk}, [](OpBuilder &b, Location l, ValueRange args) -> Value {
    return arith::MulFOp::create(b, l, args[0], args[1]);
  }, loc);
  AffineExpr t3, h3, s3;
  bindDims(&context, t3, h3, s3);
  AffineMap element = AffineMap::get(3, 0, {t3, h3, s3}, &context),
            perHead = AffineMap::get(3, 0, {t3, h3}, &context);
  Value squares = build.generic({headsOf(kScaled)}, {element}, {sequence, h},
                                [](OpBuilder &b, Location l, ValueRange args) -> Value {
                                  return arith::AddFOp::create(
                                      b, l, args[1], arith::MulFOp::create(b, l, args[0], args[0]));
                                },
                                loc, /*reductionDims=*/1);
  Value unit = build.generic({headsOf(kScaled), squares}, {element, perHead}, {sequence, h, s},
                             [](OpBuilder &b, Location l, ValueRange args) -> Value {
                               Value length = arith::MaximumFOp::create(
                                   b, l, math::SqrtOp::create(b, l, args[1]), f32Constant(b, l, 1e-12));
                               return arith::DivFOp::create(b, l, args[0], length);
                             },
                             loc);
  k = build.generic({k, a, *ka},
                    {builder.getMultiDimIdentityMap(2), builder.getMultiDimIdentityMap(2),
                     AffineMap::get(2, 0, {getAffineDimExpr(1, &context)}, &context)},
                    {sequence, e},
                    [](OpBuilder &b, Location l, ValueRange args) -> Value {
                      Value scaled = arith::MulFOp::create(b, l, args[0], args[2]);
                      return arith::AddFOp::create(
                          b, l, args[0],
                          arith::SubFOp::create(b, l, arith::MulFOp::create(b, l, args[1], scaled), scaled));
                    },
                    loc);
  // a = -kk, b = kk * a for the delta rule.
  Value negUnit = build.elementwise(unit, loc, [](OpBuilder &b, Location l, ValueRange args) -> Value {
    return arith::NegFOp::create(b, l, args[0]);
  });
  Value unitA = build.elementwise({unit, headsOf(a)}, loc, [](OpBuilder &b, Location l, ValueRange args) -> Value {
    return arith::MulFOp::create(b, l, args[0], args[1]);
  });
  Value kh = headsOf(k), vh = headsOf(v), rh = headsOf(r);
  auto wkv = Wkv7Op::create(builder, loc, rh, headsOf(w), kh, vh, negUnit, unitA, state[2], length);
  state[2] = wkv.getNewState();
  Value y = layerNorm(flat(wkv.getResult()), h, kGroupNormEpsilon, *lnW, *lnB, loc);
  // The bonus: v * sum over the head of (k * r * r_k).
  Value rkHeads = tensor::ExpandShapeOp::create(builder, loc, RankedTensorType::get({h, s}, builder.getF32Type()),
                                                *rk, ArrayRef<ReassociationIndices>{{0, 1}});
  Value bonus = build.generic({kh, rh, rkHeads}, {element, element, AffineMap::get(3, 0, {h3, s3}, &context)},
                              {sequence, h},
                              [](OpBuilder &b, Location l, ValueRange args) -> Value {
                                Value p = arith::MulFOp::create(b, l, arith::MulFOp::create(b, l, args[0], args[1]), args[2]);
                                return arith::AddFOp::create(b, l, args[3], p);
                              },
                              loc, /*reductionDims=*/1);
  Value withBonus = build.generic({headsOf(y), vh, bonus, headsOf(g)}, {element, element, perHead, element},
                                  {sequence, h, s},
                                  [](OpBuilder &b, Location l, ValueRange args) -> Value {
                                    Value sum = arith::AddFOp::create(
                                        b, l, args[0], arith::MulFOp::create(b, l, args[1], args[2]));
                                    return arith::MulFOp::create(b, l, sum, args[3]);
                                  },
                                  loc);
  Value ffnInput = build.add(build.matmulTransposed(flat(withBonus), *wOut, loc), x, loc);

  // Channel mix: relu(k)^2 V.
  loc = named(prefix + "channel_mix");
  FailureOr<Value> ffnNorm = norm(ffnInput, prefix + "attn_norm_2");
  if (failed(ffnNorm))
    return failure();
  Value ffnPrevious = tokenShift(*ffnNorm, state[1], length, loc);
  Value key = build.elementwise(
      build.matmulTransposed(lerp(*ffnNorm, ffnPrevious, *lerpK, loc), *ffKey, loc), loc,
      [](OpBuilder &b, Location l, ValueRange args) -> Value {
        Value relu = arith::MaximumFOp::create(b, l, args[0], f32Constant(b, l, 0));
        return arith::MulFOp::create(b, l, relu, relu);
      });
  return build.add(build.matmulTransposed(key, *ffValue, loc), ffnInput, loc);
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
