// Mamba's blocks (llama.cpp's build_mamba_layer) from linalg and kiln ops, on the
// recurrent models' shared entry points (RecurrentGraph).
#include "frontends/recurrent/MambaGraph.h"

#include "frontends/common/TensorSizeLimit.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;

namespace kiln::recurrent {
namespace {

/// llama.cpp's softplus threshold (ggml_ssm_scan): above it, softplus(x) is x in f32.
constexpr float kSoftplusLinearAbove = 20.0f;

class MambaBuilder : public RecurrentGraphBuilder {
public:
  MambaBuilder(MLIRContext &context, Location fileLoc, const MambaConfig &config,
               decoder::WeightSource &source)
      : RecurrentGraphBuilder(context, fileLoc, config, source), config(config) {}

private:
  /// The convolution's channels: x (v1); x, B and C (v2).
  int64_t convChannels() const {
    return config.version == 2 ? config.inner + 2 * config.stateSize : config.inner;
  }
  std::vector<StateSlot> stateSlots() const override {
    return {{"conv_state", {config.convKernel - 1, convChannels()}},
            {"ssm_state", {config.inner, config.stateSize}}};
  }
  LogicalResult checkSizes(int64_t tokens) override {
    return checkTensorSize(fileLoc, "the scan's steps (--seq-len x inner size x state size)",
                           {tokens + 1, config.inner, config.stateSize});
  }
  FailureOr<Value> block(int64_t index, Value x, MutableArrayRef<Value> state,
                         Value length) override;
  /// A Mamba-2 block (llama.cpp's build_mamba2_layer, one group): the per-head step and
  /// decay broadcast over each head's channels make it the same selective scan.
  FailureOr<Value> block2(int64_t index, Value x, MutableArrayRef<Value> state, Value length);
  /// softplus(x) as ggml_ssm_scan computes it.
  static Value softplus(OpBuilder &b, Location l, Value v) {
    Value soft = math::Log1pOp::create(b, l, math::ExpOp::create(b, l, v));
    Value linear = arith::CmpFOp::create(b, l, arith::CmpFPredicate::OGT, v,
                                         f32Constant(b, l, kSoftplusLinearAbove));
    return arith::SelectOp::create(b, l, linear, v, soft);
  }
  FailureOr<Value> finalNorm(Value x) override {
    FailureOr<Value> norm = floatWeight("output_norm.weight", {config.embedding});
    if (failed(norm))
      return failure();
    return RmsNormOp::create(builder, named("output_norm.weight"), x, *norm,
                             builder.getF32FloatAttr(float(config.normEpsilon)))
        .getResult();
  }
  /// x + bias, the bias a vector over x's columns.
  Value addBias(Value x, Value bias, Location loc) {
    return withVectors(x, {bias}, [](OpBuilder &b, Location l, ValueRange args) -> Value {
      return arith::AddFOp::create(b, l, args[0], args[1]);
    }, loc);
  }

  const MambaConfig &config;
};

FailureOr<Value> MambaBuilder::block(int64_t index, Value x, MutableArrayRef<Value> state,
                                     Value length) {
  if (config.version == 2)
    return block2(index, x, state, length);
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
  dt = build.elementwise(dt, loc, [](OpBuilder &b, Location l, ValueRange args) {
    return softplus(b, l, args[0]);
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

FailureOr<Value> MambaBuilder::block2(int64_t index, Value x, MutableArrayRef<Value> state,
                                      Value length) {
  const MambaConfig &c = config;
  std::string prefix = "blk." + std::to_string(index) + ".";
  auto name = [&](StringRef tensor) { return prefix + tensor.str(); };
  int64_t inner = c.inner, heads = c.timeStepRank, states = c.stateSize;
  int64_t headSize = inner / heads, channels = convChannels();
  FailureOr<Value> norm = floatWeight(name("attn_norm.weight"), {c.embedding});
  FailureOr<Value> wIn = floatWeight(name("ssm_in.weight"), {inner + channels + heads, c.embedding});
  FailureOr<Value> wConv = floatWeight(name("ssm_conv1d.weight"), {channels, c.convKernel});
  FailureOr<Value> bConv = floatWeight(name("ssm_conv1d.bias"), {channels});
  FailureOr<Value> bDt = floatWeight(name("ssm_dt.bias"), {heads});
  FailureOr<Value> a = floatWeight(name("ssm_a"), {heads, 1});
  FailureOr<Value> d = floatWeight(name("ssm_d"), {heads, 1});
  FailureOr<Value> gateNorm = vectorWeight(name("ssm_norm.weight"), {1, inner});
  FailureOr<Value> wOut = floatWeight(name("ssm_out.weight"), {c.embedding, inner});
  if (failed(norm) || failed(wIn) || failed(wConv) || failed(bConv) || failed(bDt) ||
      failed(a) || failed(d) || failed(gateNorm) || failed(wOut))
    return failure();

  Location loc = named(prefix + "ssm");
  Value h = RmsNormOp::create(builder, loc, x, *norm,
                              builder.getF32FloatAttr(float(c.normEpsilon)));
  // The input projection: z, then x, B and C (convolved together), then the step per head.
  Value zxbcdt = build.matmulTransposed(h, *wIn, loc);
  Value z = columns(zxbcdt, 0, inner, loc);
  auto conv = CausalConv1dOp::create(builder, loc, columns(zxbcdt, inner, channels, loc),
                                     state[0], *wConv, length);
  state[0] = conv.getNewWindow();
  Value xbc = withVectors(conv.getResult(), {*bConv},
                          [](OpBuilder &b, Location l, ValueRange args) {
                            return silu(b, l, arith::AddFOp::create(b, l, args[0], args[1]));
                          },
                          loc);
  Value u = columns(xbc, 0, inner, loc);
  Value bs = columns(xbc, inner, states, loc), cs = columns(xbc, inner + states, states, loc);
  // Channel ch belongs to head ch / head size: its step and decay are the head's.
  AffineExpr t, ch;
  bindDims(&context, t, ch);
  AffineExpr head = ch.floorDiv(headSize), zero = getAffineConstantExpr(0, &context);
  Value dt = build.generic({columns(zxbcdt, inner + channels, heads, loc), *bDt},
                           {AffineMap::get(2, 0, {t, head}, &context),
                            AffineMap::get(2, 0, {head}, &context)},
                           {sequence, inner},
                           [](OpBuilder &b, Location l, ValueRange args) {
                             return softplus(b, l, arith::AddFOp::create(b, l, args[0], args[1]));
                           },
                           loc);
  // A [heads, 1] over the scan's [channels, states]: channel is the first loop here.
  AffineExpr channel = getAffineDimExpr(0, &context);
  Value decay = build.generic({*a}, {AffineMap::get(2, 0, {channel.floorDiv(headSize), zero}, &context)},
                              {inner, states},
                              [](OpBuilder &, Location, ValueRange args) { return args[0]; }, loc);
  auto scan = SelectiveScanOp::create(builder, loc, u, dt, decay, bs, cs, state[1], length);
  state[1] = scan.getNewState();
  // y = (scan + u * D) * silu(z), RMS-normalized, then the output projection.
  AffineMap rows2 = AffineMap::get(2, 0, {t, ch}, &context);
  Value gated = build.generic(
      {scan.getResult(), u, *d, z}, {rows2, rows2, AffineMap::get(2, 0, {head, zero}, &context), rows2},
      {sequence, inner},
      [](OpBuilder &b, Location l, ValueRange args) -> Value {
        Value skip = arith::AddFOp::create(b, l, args[0], arith::MulFOp::create(b, l, args[1], args[2]));
        return arith::MulFOp::create(b, l, skip, silu(b, l, args[3]));
      },
      loc);
  Value normed = RmsNormOp::create(builder, loc, gated, *gateNorm,
                                   builder.getF32FloatAttr(float(c.normEpsilon)));
  return build.add(x, build.matmulTransposed(normed, *wOut, loc), loc);
}

} // namespace

OwningOpRef<ModuleOp> buildMamba(MLIRContext &context, Location fileLoc, const MambaConfig &config,
                                 decoder::WeightSource &weights,
                                 const decoder::DecoderOptions &options) {
  context.loadDialect<KilnDialect, arith::ArithDialect, func::FuncDialect,
                      linalg::LinalgDialect, math::MathDialect, tensor::TensorDialect>();
  return MambaBuilder(context, fileLoc, config, weights).run(options);
}

} // namespace kiln::recurrent
