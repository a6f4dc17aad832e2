// The decoder-only transformer forward pass (llama.cpp's llm_build_llama and
// llm_build_gemma3 graphs) from linalg and kiln ops: one full-sequence pass (@main), or
// @prefill and @decode over key/value caches.
#include "frontends/decoder/DecoderGraph.h"

#include "frontends/common/LinalgBuilder.h"
#include "frontends/common/TensorSizeLimit.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

#include <algorithm>
#include <cmath>

using namespace mlir;

namespace kiln::decoder {

WeightSource::~WeightSource() = default;

LogicalResult checkBlockCount(Location loc, StringRef key, int64_t count,
                              const WeightSource &weights,
                              llvm::function_ref<std::string(int64_t)> blockTensor) {
  int64_t present = 0;
  while (weights.contains(blockTensor(present)))
    ++present;
  if (count == present)
    return success();
  InFlightDiagnostic error =
      emitError(loc) << key << " is " << count << ", but the model's tensors hold ";
  if (!present)
    return error << "no blocks (no tensor '" << blockTensor(0) << "')";
  if (present == 1)
    return error << "1 block ('" << blockTensor(0) << "')";
  return error << present << " blocks ('" << blockTensor(0) << "' to '"
               << blockTensor(present - 1) << "')";
}

func::FuncOp buildEntryPoint(OpBuilder &builder, Location loc, StringRef name, int64_t sequence,
                            int64_t vocab, bool lastRowOnly, ArrayRef<Type> stateTypes,
                            ArrayRef<std::string> stateNames) {
  Type f32 = builder.getF32Type(), i64 = builder.getI64Type();
  SmallVector<Type> argTypes{RankedTensorType::get({sequence}, builder.getI32Type()),
                             RankedTensorType::get({sequence}, i64)},
      resultTypes{RankedTensorType::get({lastRowOnly ? 1 : sequence, vocab}, f32)};
  SmallVector<std::string> argNames{"tokens", "positions"};
  if (lastRowOnly) {
    argTypes.push_back(RankedTensorType::get({1}, i64));
    argNames.push_back("logits_row");
  }
  size_t firstState = argTypes.size();
  argTypes.append(stateTypes.begin(), stateTypes.end());
  resultTypes.append(stateTypes.begin(), stateTypes.end());
  auto func = func::FuncOp::create(builder, loc, name, builder.getFunctionType(argTypes, resultTypes));
  for (auto [i, argName] : llvm::enumerate(argNames))
    func.setArgAttr(i, "kiln.name", builder.getStringAttr(argName));
  func.setResultAttr(0, "kiln.name", builder.getStringAttr("logits"));
  for (auto [i, state] : llvm::enumerate(stateNames)) {
    func.setArgAttr(firstState + i, "kiln.state", builder.getStringAttr(state));
    func.setResultAttr(1 + i, "kiln.state", builder.getStringAttr(state));
  }
  builder.setInsertionPointToEnd(func.addEntryBlock());
  return func;
}

namespace {

/// The tokens compiled per forward pass when the caller does not choose.
constexpr int64_t kDefaultSequenceLength = 64;

/// The cache rows (tokens) in KV-cache mode when the caller does not choose.
constexpr int64_t kDefaultCacheLength = 512;

/// The additive attention mask for keys a query may not see: large but finite, so a
/// fully masked row cannot turn into NaN.
constexpr double kMaskedOut = -1.0e30;

class GraphBuilder {
public:
  GraphBuilder(MLIRContext &context, Location fileLoc, const DecoderConfig &config,
               WeightSource &source)
      : context(context), builder(&context), build(builder), fileLoc(fileLoc), config(config),
        source(source) {}

  OwningOpRef<ModuleOp> run(const DecoderOptions &options);

private:
  Location named(const std::string &name) {
    return NameLoc::get(builder.getStringAttr(name), fileLoc);
  }
  FailureOr<Value> weight(StringRef name, ArrayRef<int64_t> shape);
  FailureOr<Value> floatWeight(StringRef name, ArrayRef<int64_t> shape);

  Value scale(Value value, double factor, Location loc);
  Value rmsNorm(Value x, Value weight, Location loc) {
    return RmsNormOp::create(builder, loc, x, weight,
                             builder.getF32FloatAttr(float(config.normEpsilon)));
  }
  /// One transformer block. `cache` is empty without KV cache, else this block's
  /// {k cache, v cache}, replaced by the updated caches.
  FailureOr<Value> block(int64_t index, Value x, Value positions,
                         MutableArrayRef<Value> cache);
  /// The additive mask [S, T] for a block's attention, or null where the causal flag
  /// of kiln.attention says it all (no cache, no window). Built once per window.
  Value attentionMask(int64_t window, Value positions, Location loc);
  /// Adds `func.func @name` over `sequence` tokens; with `lastRowOnly` (@prefill) it
  /// takes a `logits_row` input and returns that row's logits only.
  LogicalResult buildFunction(StringRef name, bool lastRowOnly);

  MLIRContext &context;
  OpBuilder builder;
  kiln::LinalgBuilder build;
  Location fileLoc;
  const DecoderConfig &config;
  WeightSource &source;
  /// The cache rows of a block: cacheLength, or for a sliding-window block a ring of
  /// window + prefill tokens - 1 rows where that is fewer (see kiln.attention's
  /// ring_positions); 0 without KV cache.
  int64_t cacheRows(const LayerConfig &layer) const {
    if (!cacheLength || !layer.slidingWindow || fullWindowCaches)
      return cacheLength;
    return std::min(cacheLength, layer.slidingWindow + prefillTokens - 1);
  }

  int64_t sequence = 0;
  int64_t prefillTokens = 0;            // tokens of @prefill (@main without KV cache)
  int64_t cacheLength = 0;              // 0 without KV cache
  bool fullWindowCaches = false;
  llvm::StringMap<Value> weights;       // this function's weight values
  llvm::DenseMap<int64_t, Value> masks; // this function's masks by window
};

FailureOr<Value> GraphBuilder::weight(StringRef name, ArrayRef<int64_t> shape) {
  if (Value existing = weights.lookup(name))
    return existing;
  FailureOr<Value> value = source.load(builder, name, shape);
  if (succeeded(value))
    weights[name] = *value;
  return value;
}

FailureOr<Value> GraphBuilder::floatWeight(StringRef name, ArrayRef<int64_t> shape) {
  FailureOr<Value> value = weight(name, shape);
  if (failed(value))
    return failure();
  return build.toF32(*value, named(name.str()));
}

Value GraphBuilder::scale(Value value, double factor, Location loc) {
  return build.elementwise(value, loc, [&](OpBuilder &b, Location l, ValueRange args) -> Value {
    Value constant = arith::ConstantOp::create(b, l, b.getF32FloatAttr(float(factor)));
    return arith::MulFOp::create(b, l, args[0], constant);
  });
}

/// Without a cache, query s (at position p_s) sees key t (at position p_t) when
/// p_t <= p_s and, with a window W, p_s - p_t < W. Null when causal attention (the
/// op's own rule) is the same thing.
Value GraphBuilder::attentionMask(int64_t window, Value positions, Location loc) {
  if (!window)
    return Value();
  if (Value existing = masks.lookup(window))
    return existing;
  Type f32 = builder.getF32Type();
  auto parallel = utils::IteratorType::parallel;
  AffineExpr s, t;
  bindDims(&context, s, t);
  SmallVector<Value> inputs{positions, positions};
  SmallVector<AffineMap> maps{AffineMap::get(2, 0, {s}, &context),
                              AffineMap::get(2, 0, {t}, &context),
                              builder.getMultiDimIdentityMap(2)};
  Value init = tensor::EmptyOp::create(builder, loc, ArrayRef<int64_t>{sequence, sequence}, f32);
  Value mask =
      linalg::GenericOp::create(
          builder, loc, TypeRange{init.getType()}, inputs, ValueRange{init}, maps,
          {parallel, parallel},
          [&](OpBuilder &b, Location l, ValueRange args) {
            Value query = args[0], key = args[1];
            Value distance = arith::SubIOp::create(b, l, query, key);
            Value limit = arith::ConstantOp::create(b, l, b.getI64IntegerAttr(window));
            Value visible = arith::AndIOp::create(
                b, l, arith::CmpIOp::create(b, l, arith::CmpIPredicate::sle, key, query),
                arith::CmpIOp::create(b, l, arith::CmpIPredicate::slt, distance, limit));
            Value zero = arith::ConstantOp::create(b, l, b.getF32FloatAttr(0));
            Value masked = arith::ConstantOp::create(b, l, b.getF32FloatAttr(float(kMaskedOut)));
            linalg::YieldOp::create(
                b, l, arith::SelectOp::create(b, l, visible, zero, masked).getResult());
          })
          .getResult(0);
  masks[window] = mask;
  return mask;
}

FailureOr<Value> GraphBuilder::block(int64_t index, Value x, Value positions,
                                     MutableArrayRef<Value> cache) {
  const DecoderConfig &c = config;
  const LayerConfig &layer = c.layers[index];
  std::string prefix = "blk." + std::to_string(index) + ".";
  auto name = [&](StringRef tensor) { return prefix + tensor.str() + ".weight"; };
  int64_t qSize = c.heads * c.keyLength, kSize = c.kvHeads * c.keyLength,
          vSize = c.kvHeads * c.valueLength, outSize = c.heads * c.valueLength;
  FailureOr<Value> attnNorm = floatWeight(name("attn_norm"), {c.embedding});
  FailureOr<Value> wq = floatWeight(name("attn_q"), {qSize, c.embedding});
  FailureOr<Value> wk = floatWeight(name("attn_k"), {kSize, c.embedding});
  FailureOr<Value> wv = floatWeight(name("attn_v"), {vSize, c.embedding});
  FailureOr<Value> wo = floatWeight(name("attn_output"), {c.embedding, outSize});
  FailureOr<Value> ffnNorm = floatWeight(name("ffn_norm"), {c.embedding});
  FailureOr<Value> wGate = floatWeight(name("ffn_gate"), {c.feedForward, c.embedding});
  FailureOr<Value> wUp = floatWeight(name("ffn_up"), {c.feedForward, c.embedding});
  FailureOr<Value> wDown = floatWeight(name("ffn_down"), {c.embedding, c.feedForward});
  if (failed(attnNorm) || failed(wq) || failed(wk) || failed(wv) || failed(wo) ||
      failed(ffnNorm) || failed(wGate) || failed(wUp) || failed(wDown))
    return failure();
  FailureOr<Value> qNorm = Value(), kNorm = Value(), attnPostNorm = Value(),
                   ffnPostNorm = Value();
  if (c.queryKeyNorm) {
    qNorm = floatWeight(name("attn_q_norm"), {c.keyLength});
    kNorm = floatWeight(name("attn_k_norm"), {c.keyLength});
  }
  if (c.postNorms) {
    attnPostNorm = floatWeight(name("post_attention_norm"), {c.embedding});
    ffnPostNorm = floatWeight(name("post_ffw_norm"), {c.embedding});
  }
  if (failed(qNorm) || failed(kNorm) || failed(attnPostNorm) || failed(ffnPostNorm))
    return failure();

  // Attention: norm, projections, heads, (q/k norms), RoPE on q and k, GQA attention.
  Location loc = named(prefix + "attn");
  Value h = rmsNorm(x, *attnNorm, loc);
  auto heads = [&](Value value, int64_t count, int64_t size) -> Value {
    auto type = RankedTensorType::get({sequence, count, size}, builder.getF32Type());
    return tensor::ExpandShapeOp::create(builder, loc, type, value,
                                         ArrayRef<ReassociationIndices>{{0}, {1, 2}});
  };
  auto rope = [&](Value value) -> Value {
    return RopeOp::create(builder, loc, value, positions,
                          builder.getF64FloatAttr(layer.ropeTheta),
                          builder.getF64FloatAttr(layer.ropeFreqScale),
                          builder.getI64IntegerAttr(c.rotaryDim),
                          RopeModeAttr::get(&context, c.ropeMode));
  };
  // Weights are read in place (WeightRead): copying each transposed would make a
  // one-token decode step 8x slower.
  Value q = heads(build.matmulTransposed(h, *wq, loc), c.heads, c.keyLength);
  Value k = heads(build.matmulTransposed(h, *wk, loc), c.kvHeads, c.keyLength);
  Value v = heads(build.matmulTransposed(h, *wv, loc), c.kvHeads, c.valueLength);
  if (c.queryKeyNorm) {
    q = rmsNorm(q, *qNorm, loc);
    k = rmsNorm(k, *kNorm, loc);
  }
  q = rope(q);
  k = rope(k);
  // Over a cache, the queries' place among the keys is the first position (the pass's
  // positions are consecutive): the attention then reads only
  // the rows that exist (and, sliding, the window's). Without one, a mask.
  Value mask, offset;
  IntegerAttr window, ringPositions;
  if (!cache.empty()) {
    offset = tensor::ExtractSliceOp::create(builder, loc, positions,
                                            ArrayRef<OpFoldResult>{builder.getIndexAttr(0)},
                                            ArrayRef<OpFoldResult>{builder.getIndexAttr(1)},
                                            ArrayRef<OpFoldResult>{builder.getIndexAttr(1)});
    // The new tokens' keys and values become rows p0 .. p0 + S - 1 of the caches,
    // written in place (only those rows); in a sliding-window block's ring, rows
    // (p0 + i) mod rows.
    bool ring = cacheRows(layer) < cacheLength;
    cache[0] = CacheWriteOp::create(builder, loc, cache[0], k, offset, ring);
    cache[1] = CacheWriteOp::create(builder, loc, cache[1], v, offset, ring);
    k = cache[0];
    v = cache[1];
    if (layer.slidingWindow)
      window = builder.getI64IntegerAttr(layer.slidingWindow);
    if (ring)
      ringPositions = builder.getI64IntegerAttr(cacheLength);
  } else {
    mask = attentionMask(layer.slidingWindow, positions, loc);
  }
  FloatAttr attentionScale =
      c.attentionScale ? builder.getF64FloatAttr(c.attentionScale) : FloatAttr();
  Value attention =
      AttentionOp::create(builder, loc, q, k, v, mask, offset, /*causal=*/!mask && !offset,
                          attentionScale, window, ringPositions);
  Value merged = tensor::CollapseShapeOp::create(
      builder, loc, RankedTensorType::get({sequence, outSize}, builder.getF32Type()),
      attention, ArrayRef<ReassociationIndices>{{0}, {1, 2}});
  Value attended = build.matmulTransposed(merged, *wo, loc);
  if (c.postNorms)
    attended = rmsNorm(attended, *attnPostNorm, loc);
  x = build.add(x, attended, loc);

  // Feed-forward: down(act(gate(h)) * up(h)).
  loc = named(prefix + "ffn");
  h = rmsNorm(x, *ffnNorm, loc);
  Value gate = build.matmulTransposed(h, *wGate, loc);
  Value up = build.matmulTransposed(h, *wUp, loc);
  FeedForward kind = c.feedForwardKind;
  Value act = build.elementwise({gate, up}, loc, [kind](OpBuilder &b, Location l, ValueRange args) {
    auto constant = [&](double value) -> Value {
      return arith::ConstantOp::create(b, l, b.getF32FloatAttr(float(value)));
    };
    Value g = args[0], activated;
    if (kind == FeedForward::SwiGlu) {
      Value denominator = arith::AddFOp::create(
          b, l, constant(1), math::ExpOp::create(b, l, arith::NegFOp::create(b, l, g)));
      activated = arith::DivFOp::create(b, l, g, denominator);
    } else {
      // 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))
      Value cube = arith::MulFOp::create(b, l, arith::MulFOp::create(b, l, g, g), g);
      Value inner =
          arith::AddFOp::create(b, l, g, arith::MulFOp::create(b, l, constant(0.044715), cube));
      Value t = math::TanhOp::create(
          b, l, arith::MulFOp::create(b, l, constant(std::sqrt(2.0 / M_PI)), inner));
      activated = arith::MulFOp::create(b, l, arith::MulFOp::create(b, l, constant(0.5), g),
                                        arith::AddFOp::create(b, l, constant(1), t));
    }
    return arith::MulFOp::create(b, l, activated, args[1]).getResult();
  });
  Value down = build.matmulTransposed(act, *wDown, loc);
  if (c.postNorms)
    down = rmsNorm(down, *ffnPostNorm, loc);
  return build.add(x, down, loc);
}

OwningOpRef<ModuleOp> GraphBuilder::run(const DecoderOptions &options) {
  const DecoderConfig &c = config;
  if (options.contextLength < 0 || options.contextLength > c.contextLength)
    return emitError(fileLoc) << "KV-cache context length " << options.contextLength
                              << " is outside the model's context of " << c.contextLength
                              << " tokens (" << c.contextLengthKey << ")",
           nullptr;
  int64_t limit = c.contextLength;
  if (options.kvCache) {
    cacheLength = options.contextLength ? options.contextLength
                                        : std::min(c.contextLength, kDefaultCacheLength);
    limit = cacheLength;
  }
  if (options.sequenceLength < 0 || options.sequenceLength > limit)
    return emitError(fileLoc) << "sequence length " << options.sequenceLength
                              << (options.kvCache ? " is outside the KV cache of "
                                                  : " is outside the model's context of ")
                              << limit << " tokens"
                              << (options.kvCache ? "" : " (" + c.contextLengthKey + ")"),
           nullptr;
  int64_t tokens =
      options.sequenceLength ? options.sequenceLength : std::min(limit, kDefaultSequenceLength);
  prefillTokens = tokens;
  fullWindowCaches = options.fullWindowCaches;
  // The tensors the options size (the weights' sizes are the files'): the logits, each
  // block's caches and the attention mask, where there is one (see attentionMask).
  bool masked = cacheLength || llvm::any_of(c.layers, [](const LayerConfig &layer) {
                  return layer.slidingWindow != 0;
                });
  int64_t keys = cacheLength ? cacheLength : tokens;
  if (failed(checkTensorSize(fileLoc, "the logits tensor (--seq-len x vocabulary)",
                             {tokens, c.vocab})) ||
      (masked && failed(checkTensorSize(fileLoc, "the attention mask (--seq-len x keys)",
                                        {tokens, keys}))) ||
      (cacheLength &&
       (failed(checkTensorSize(fileLoc, "each key cache (--ctx x kv heads x key length)",
                               {cacheLength, c.kvHeads, c.keyLength})) ||
        failed(checkTensorSize(fileLoc, "each value cache (--ctx x kv heads x value length)",
                               {cacheLength, c.kvHeads, c.valueLength})))))
    return nullptr;

  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  builder.setInsertionPointToEnd(module->getBody());
  sequence = tokens;
  if (!options.kvCache) {
    if (failed(buildFunction("main", /*lastRowOnly=*/false)))
      return nullptr;
  } else {
    if (failed(buildFunction("prefill", /*lastRowOnly=*/true)))
      return nullptr;
    builder.setInsertionPointToEnd(module->getBody());
    sequence = 1;
    if (failed(buildFunction("decode", /*lastRowOnly=*/false)))
      return nullptr;
  }
  if (failed(source.checkAllUsed()) || failed(verify(*module)))
    return nullptr;
  return module;
}

LogicalResult GraphBuilder::buildFunction(StringRef funcName, bool lastRowOnly) {
  const DecoderConfig &c = config;
  weights.clear();
  masks.clear();
  Type f32 = builder.getF32Type();
  SmallVector<Type> stateTypes;
  SmallVector<std::string> stateNames;
  if (cacheLength) {
    for (size_t i = 0; i < c.layers.size(); ++i) {
      int64_t rows = cacheRows(c.layers[i]);
      stateNames.push_back("k_cache." + std::to_string(i));
      stateNames.push_back("v_cache." + std::to_string(i));
      stateTypes.append({RankedTensorType::get({rows, c.kvHeads, c.keyLength}, f32),
                         RankedTensorType::get({rows, c.kvHeads, c.valueLength}, f32)});
    }
  }
  func::FuncOp func = buildEntryPoint(builder, fileLoc, funcName, sequence, c.vocab, lastRowOnly,
                                      stateTypes, stateNames);
  Block *body = &func.getBody().front();
  Value tokens = body->getArgument(0), positions = body->getArgument(1);
  SmallVector<Value> caches(body->getArguments().take_back(stateTypes.size()));

  // A packed embedding is gathered row by row, dequantizing only the rows used.
  FailureOr<Value> embedding = weight("token_embd.weight", {c.vocab, c.embedding});
  if (failed(embedding))
    return failure();
  Location embdLoc = named("token_embd.weight");
  Value x = build.toF32(GatherOp::create(builder, embdLoc, *embedding, tokens), embdLoc);
  if (c.embeddingScale != 1)
    x = scale(x, c.embeddingScale, embdLoc);
  for (size_t i = 0; i < c.layers.size(); ++i) {
    MutableArrayRef<Value> blockCache;
    if (cacheLength)
      blockCache = MutableArrayRef<Value>(caches).slice(2 * i, 2);
    FailureOr<Value> next = block(int64_t(i), x, positions, blockCache);
    if (failed(next))
      return failure();
    x = *next;
  }
  // Without output.weight the output projection is tied to the token embedding.
  StringRef outputName =
      source.contains("output.weight") ? "output.weight" : "token_embd.weight";
  FailureOr<Value> outputNorm = floatWeight("output_norm.weight", {c.embedding});
  FailureOr<Value> output = floatWeight(outputName, {c.vocab, c.embedding});
  if (failed(outputNorm) || failed(output))
    return failure();
  Location loc = named(outputName.str());
  // Generation needs the logits of one row of the prefill batch (the prompt's last
  // token): project only that row, not all S of them onto the vocabulary.
  if (lastRowOnly)
    x = GatherOp::create(builder, loc, x, body->getArgument(2));
  Value logits = build.matmulTransposed(rmsNorm(x, *outputNorm, loc), *output, loc);
  if (double cap = c.finalLogitSoftcap) {
    logits = build.elementwise(logits, loc, [cap](OpBuilder &b, Location l, ValueRange args) {
      Value inverse = arith::ConstantOp::create(b, l, b.getF32FloatAttr(float(1 / cap)));
      Value factor = arith::ConstantOp::create(b, l, b.getF32FloatAttr(float(cap)));
      Value t = math::TanhOp::create(b, l, arith::MulFOp::create(b, l, args[0], inverse));
      return arith::MulFOp::create(b, l, t, factor).getResult();
    });
  }
  SmallVector<Value> results{logits};
  results.append(caches);
  func::ReturnOp::create(builder, loc, results);
  return success();
}

} // namespace

OwningOpRef<ModuleOp> buildDecoder(MLIRContext &context, Location fileLoc,
                                   const DecoderConfig &config, WeightSource &weights,
                                   const DecoderOptions &options) {
  context.loadDialect<KilnDialect, arith::ArithDialect, func::FuncDialect,
                      linalg::LinalgDialect, math::MathDialect, tensor::TensorDialect>();
  return GraphBuilder(context, fileLoc, config, weights).run(options);
}

} // namespace kiln::decoder
