// Builds kiln IR from a GGUF model: hyperparameters from the `llama.*` metadata,
// weights as kiln.weight ops on the file's tensor bytes, and the forward pass of
// llama.cpp's llama graph (llm_build_llama) from linalg and kiln ops: one
// full-sequence pass (@main), or @prefill and @decode over key/value caches.
#include "frontends/gguf/GgufImporter.h"

#include "frontends/gguf/GgufReader.h"

#include "dialects/Kiln/KilnDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"

#include <algorithm>
#include <cmath>
#include <string>

using namespace mlir;
using kiln::gguf::GgufReader;
using kiln::gguf::TensorInfo;

namespace {

/// Dimensions, counts and lengths larger than this are rejected before any arithmetic
/// on them (no real model comes near it; it keeps products of two within int64).
constexpr int64_t kMaxSize = int64_t(1) << 31;

/// The tokens compiled per forward pass when the caller does not choose.
constexpr int64_t kDefaultSequenceLength = 64;

/// The cache rows (tokens) in KV-cache mode when the caller does not choose.
constexpr int64_t kDefaultCacheLength = 512;

/// The additive attention mask for cache rows a token may not see: large but finite,
/// so a fully masked row cannot turn into NaN.
constexpr double kMaskedOut = -1.0e30;

/// llama hyperparameters, from the metadata keys llama.cpp reads (llama-arch.cpp).
struct LlamaConfig {
  int64_t contextLength = 0;
  int64_t embedding = 0;
  int64_t blocks = 0;
  int64_t feedForward = 0;
  int64_t heads = 0;
  int64_t kvHeads = 0;
  int64_t keyLength = 0;   // per-head query/key size
  int64_t valueLength = 0; // per-head value size
  int64_t rotaryDim = 0;
  int64_t vocab = 0;
  double ropeTheta = 10000;
  double ropeFreqScale = 1;
  double rmsEpsilon = 0;
};

std::string formatShape(ArrayRef<int64_t> shape) {
  std::string text = "[";
  for (auto [i, dim] : llvm::enumerate(shape))
    text += (i ? ", " : "") + std::to_string(dim);
  return text + "]";
}

class LlamaImporter {
public:
  /// `source` is the absolute path the kiln.weight ops name; diagnostics point at
  /// `fileLoc`, the path as the user gave it.
  LlamaImporter(MLIRContext &context, Location fileLoc, std::string source,
                const GgufReader &reader)
      : context(context), source(std::move(source)), reader(reader), builder(&context),
        fileLoc(fileLoc) {}

  OwningOpRef<ModuleOp> run(int64_t sequenceLength, bool kvCache, int64_t contextLength);

private:
  // Metadata.
  std::string key(StringRef suffix) const { return ("llama." + suffix).str(); }
  FailureOr<int64_t> count(StringRef suffix, std::optional<int64_t> fallback = std::nullopt);
  FailureOr<double> real(StringRef suffix, std::optional<double> fallback = std::nullopt);
  LogicalResult readConfig();

  // Weights.
  Location tensorLoc(StringRef name) {
    return NameLoc::get(builder.getStringAttr(name), fileLoc);
  }
  FailureOr<Value> weight(StringRef name, ArrayRef<int64_t> shape);
  FailureOr<Value> floatWeight(StringRef name, ArrayRef<int64_t> shape);
  LogicalResult checkAllTensorsUsed();

  // Graph pieces.
  Value toF32(Value value, Location loc);
  Value elementwise(ValueRange inputs, Location loc,
                    function_ref<Value(OpBuilder &, Location, ValueRange)> body);
  Value add(Value lhs, Value rhs, Location loc);
  Value matmulTransposed(Value x, Value w, Location loc);
  /// One transformer block. `cache` is empty without KV cache, else this block's
  /// {k cache, v cache}, replaced by the updated caches.
  FailureOr<Value> block(int64_t index, Value x, Value positions,
                         MutableArrayRef<Value> cache);
  Value writeCache(Value cache, Value fresh, Value positions, Location loc);
  Value cacheMask(Value positions, Location loc);
  /// Adds `func.func @name` for `sequence` tokens (over caches when `cacheLength`).
  LogicalResult buildFunction(StringRef name);

  MLIRContext &context;
  std::string source;
  const GgufReader &reader;
  OpBuilder builder;
  Location fileLoc;
  LlamaConfig config;
  int64_t sequence = 0;
  int64_t cacheLength = 0; // 0 without KV cache
  llvm::StringMap<Value> weights; // this function's weight values
  llvm::StringSet<> usedTensors;  // across all functions
};

FailureOr<int64_t> LlamaImporter::count(StringRef suffix, std::optional<int64_t> fallback) {
  std::string name = key(suffix);
  if (fallback && !reader.find(name))
    return *fallback;
  kiln::Result<uint64_t> value = reader.getUInt(name);
  if (!value)
    return emitError(fileLoc) << value.error();
  if (*value == 0 || *value > uint64_t(kMaxSize))
    return emitError(fileLoc) << "gguf: metadata key '" << name << "' must be between 1 and "
                              << kMaxSize << ", got " << *value;
  return int64_t(*value);
}

FailureOr<double> LlamaImporter::real(StringRef suffix, std::optional<double> fallback) {
  std::string name = key(suffix);
  if (fallback && !reader.find(name))
    return *fallback;
  kiln::Result<double> value = reader.getFloat(name);
  if (!value)
    return emitError(fileLoc) << value.error();
  if (!std::isfinite(*value) || *value < 0)
    return emitError(fileLoc) << "gguf: metadata key '" << name
                              << "' must be finite and non-negative, got " << *value;
  return *value;
}

LogicalResult LlamaImporter::readConfig() {
  LlamaConfig &c = config;
  FailureOr<int64_t> contextLength = count("context_length"),
                     embedding = count("embedding_length"), blocks = count("block_count"),
                     feedForward = count("feed_forward_length"),
                     heads = count("attention.head_count");
  FailureOr<double> epsilon = real("attention.layer_norm_rms_epsilon");
  if (failed(contextLength) || failed(embedding) || failed(blocks) || failed(feedForward) ||
      failed(heads) || failed(epsilon))
    return failure();
  c.contextLength = *contextLength;
  c.embedding = *embedding;
  c.blocks = *blocks;
  c.feedForward = *feedForward;
  c.heads = *heads;
  c.rmsEpsilon = *epsilon;

  FailureOr<int64_t> kvHeads = count("attention.head_count_kv", c.heads);
  if (failed(kvHeads))
    return failure();
  c.kvHeads = *kvHeads;
  if (c.heads % c.kvHeads != 0)
    return emitError(fileLoc) << "llama.attention.head_count (" << c.heads
                              << ") is not a multiple of llama.attention.head_count_kv ("
                              << c.kvHeads << ")";
  if (!reader.find(key("attention.key_length")) && c.embedding % c.heads != 0)
    return emitError(fileLoc) << "llama.embedding_length (" << c.embedding
                              << ") is not a multiple of llama.attention.head_count ("
                              << c.heads << ")";
  FailureOr<int64_t> keyLength = count("attention.key_length", c.embedding / c.heads);
  if (failed(keyLength))
    return failure();
  c.keyLength = *keyLength;
  FailureOr<int64_t> valueLength = count("attention.value_length", c.keyLength);
  FailureOr<int64_t> rotaryDim = count("rope.dimension_count", c.keyLength);
  FailureOr<double> theta = real("rope.freq_base", 10000.0);
  if (failed(valueLength) || failed(rotaryDim) || failed(theta))
    return failure();
  c.valueLength = *valueLength;
  c.rotaryDim = *rotaryDim;
  c.ropeTheta = *theta;
  if (c.rotaryDim % 2 != 0 || c.rotaryDim > c.keyLength)
    return emitError(fileLoc) << "llama.rope.dimension_count (" << c.rotaryDim
                              << ") must be even and at most the head size (" << c.keyLength
                              << ")";
  if (c.ropeTheta <= 0)
    return emitError(fileLoc) << "llama.rope.freq_base must be positive, got " << c.ropeTheta;

  // RoPE scaling as llama.cpp reads it: the type defaults to linear; the factor comes
  // from rope.scaling.factor, else the older rope.scale_linear; 0 means none.
  StringRef scaling = "linear";
  if (reader.find(key("rope.scaling.type"))) {
    kiln::Result<std::string_view> type = reader.getString(key("rope.scaling.type"));
    if (!type)
      return emitError(fileLoc) << type.error();
    scaling = StringRef(type->data(), type->size());
  }
  FailureOr<double> factor = real("rope.scaling.factor", 0.0);
  if (succeeded(factor) && *factor == 0)
    factor = real("rope.scale_linear", 0.0);
  if (failed(factor))
    return failure();
  if (scaling == "linear") {
    c.ropeFreqScale = *factor == 0 ? 1.0 : 1.0 / *factor;
  } else if (scaling != "none") {
    return emitError(fileLoc) << "unsupported rope scaling type '" << scaling
                              << "' (llama.rope.scaling.type); kiln supports none and linear";
  }

  if (const kiln::gguf::MetadataValue *experts = reader.find(key("expert_count"));
      experts && experts->isInteger() && experts->integer != 0)
    return emitError(fileLoc) << "mixture-of-experts llama models (llama.expert_count = "
                              << experts->integer << ") are not supported";

  if (reader.tensors().empty())
    return emitError(fileLoc) << "the file holds no tensors (a vocabulary-only GGUF?)";
  const TensorInfo *embd = reader.findTensor("token_embd.weight");
  if (!embd)
    return emitError(tensorLoc("token_embd.weight")) << "missing tensor 'token_embd.weight'";
  if (embd->dims.size() != 2 || embd->dims[1] > uint64_t(kMaxSize))
    return emitError(tensorLoc("token_embd.weight"))
           << "tensor 'token_embd.weight' must be a [vocab, " << c.embedding
           << "] matrix (ggml ne [" << c.embedding << ", vocab])";
  c.vocab = int64_t(embd->dims[1]);
  return success();
}

/// The kiln element type of a ggml tensor type, or null for types kiln does not import.
Type elementTypeOf(const kiln::gguf::GgmlTypeInfo &type, MLIRContext *context) {
  StringRef name = type.name;
  if (name == "F32")
    return Float32Type::get(context);
  if (name == "F16")
    return Float16Type::get(context);
  if (name == "BF16")
    return BFloat16Type::get(context);
  if (type.kilnQuantScheme >= 0)
    return kiln::QuantType::get(context, static_cast<kiln::QuantScheme>(type.kilnQuantScheme),
                                /*groupSize=*/0);
  return nullptr;
}

FailureOr<Value> LlamaImporter::weight(StringRef name, ArrayRef<int64_t> shape) {
  if (Value existing = weights.lookup(name))
    return existing;
  Location loc = tensorLoc(name);
  const TensorInfo *info = reader.findTensor(std::string_view(name.data(), name.size()));
  if (!info)
    return emitError(loc) << "missing tensor '" << name << "' (expected shape "
                          << formatShape(shape) << ")";
  // ggml lists dimensions innermost first; kiln shapes are row-major.
  SmallVector<int64_t> actual;
  for (uint64_t dim : llvm::reverse(info->dims))
    actual.push_back(dim > uint64_t(kMaxSize) ? -1 : int64_t(dim));
  if (ArrayRef<int64_t>(actual) != shape)
    return emitError(loc) << "tensor '" << name << "' has shape " << formatShape(actual)
                          << ", expected " << formatShape(shape)
                          << " from the model's metadata";
  Type element = elementTypeOf(*info->type, &context);
  if (!element)
    return emitError(loc) << "tensor '" << name << "' has ggml type " << info->type->name
                          << ", which kiln does not support (supported: F32, F16, BF16, "
                             "Q8_0, Q4_0, Q4_K, Q6_K)";
  Value value = kiln::WeightOp::create(builder, loc, RankedTensorType::get(shape, element),
                                       name, source, info->fileOffset);
  weights[name] = value;
  usedTensors.insert(name);
  return value;
}

FailureOr<Value> LlamaImporter::floatWeight(StringRef name, ArrayRef<int64_t> shape) {
  FailureOr<Value> value = weight(name, shape);
  if (failed(value))
    return failure();
  return toF32(*value, tensorLoc(name));
}

/// Every tensor must be consumed: a bias, rope frequency factors (llama 3.1) or an
/// expert the graph ignored would silently change the model's results.
LogicalResult LlamaImporter::checkAllTensorsUsed() {
  bool unused = false;
  for (const TensorInfo &info : reader.tensors()) {
    StringRef name(info.name.data(), info.name.size());
    // llama.cpp skips the rotary tables some old conversions stored; kiln.rope
    // computes them.
    if (usedTensors.contains(name) || name.ends_with(".attn_rot_embd"))
      continue;
    emitError(tensorLoc(name)) << "tensor '" << name
                               << "' is not part of the llama graph kiln builds (biases, rope "
                                  "frequency factors and experts are not supported)";
    unused = true;
  }
  return failure(unused);
}

Value LlamaImporter::elementwise(ValueRange inputs, Location loc,
                                 function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  auto type = cast<RankedTensorType>(inputs.front().getType());
  AffineMap identity = builder.getMultiDimIdentityMap(type.getRank());
  SmallVector<AffineMap> maps(inputs.size() + 1, identity);
  SmallVector<utils::IteratorType> iterators(type.getRank(), utils::IteratorType::parallel);
  Value init = tensor::EmptyOp::create(builder, loc, type.getShape(), builder.getF32Type());
  return linalg::GenericOp::create(
             builder, loc, TypeRange{init.getType()}, inputs, ValueRange{init}, maps,
             iterators,
             [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
               linalg::YieldOp::create(nested, nestedLoc,
                                       body(nested, nestedLoc, args.drop_back()));
             })
      .getResult(0);
}

Value LlamaImporter::toF32(Value value, Location loc) {
  Type element = cast<RankedTensorType>(value.getType()).getElementType();
  if (element.isF32())
    return value;
  if (isa<kiln::QuantType>(element))
    return kiln::DequantizeOp::create(builder, loc, value, Value(), Value());
  return elementwise(value, loc, [](OpBuilder &b, Location l, ValueRange args) -> Value {
    return arith::ExtFOp::create(b, l, b.getF32Type(), args[0]);
  });
}

Value LlamaImporter::add(Value lhs, Value rhs, Location loc) {
  return elementwise({lhs, rhs}, loc, [](OpBuilder &b, Location l, ValueRange args) -> Value {
    return arith::AddFOp::create(b, l, args[0], args[1]);
  });
}

/// x · wᵀ for x: [S, K] and a ggml weight w: [M, K] (rows are output features),
/// accumulated in f32.
Value LlamaImporter::matmulTransposed(Value x, Value w, Location loc) {
  int64_t rows = cast<RankedTensorType>(x.getType()).getDimSize(0);
  int64_t cols = cast<RankedTensorType>(w.getType()).getDimSize(0);
  Value zero = arith::ConstantOp::create(builder, loc, builder.getF32FloatAttr(0));
  Value empty = tensor::EmptyOp::create(builder, loc, ArrayRef<int64_t>{rows, cols},
                                        builder.getF32Type());
  Value acc = linalg::FillOp::create(builder, loc, ValueRange{zero}, ValueRange{empty})
                  .getResult(0);
  AffineExpr m, n, k;
  bindDims(&context, m, n, k);
  auto matmul = linalg::MatmulOp::create(builder, loc, TypeRange{acc.getType()},
                                         ValueRange{x, w}, ValueRange{acc});
  matmul.setIndexingMapsAttr(builder.getAffineMapArrayAttr(
      {AffineMap::get(3, 0, {m, k}, &context), AffineMap::get(3, 0, {n, k}, &context),
       AffineMap::get(3, 0, {m, n}, &context)}));
  return matmul.getResult(0);
}

/// Writes `fresh` [S, Hkv, D] (the new tokens' keys or values) into `cache` [C, Hkv, D]
/// at rows positions[0] .. positions[0] + S - 1:
///   out[t, h, d] = p0 <= t < p0 + S ? fresh[clamp(t - p0, 0, S - 1), h, d] : cache[t, h, d]
/// Each result element reads only the same element of `cache`, so the runtime can
/// update the cache in place.
Value LlamaImporter::writeCache(Value cache, Value fresh, Value positions, Location loc) {
  auto cacheType = cast<RankedTensorType>(cache.getType());
  Type i64 = builder.getI64Type();
  int64_t count = sequence;
  auto parallel = utils::IteratorType::parallel;

  // The row of `fresh` each cache row would take: clamp(t - p0, 0, S - 1).
  Value rowsInit = tensor::EmptyOp::create(builder, loc, ArrayRef<int64_t>{cacheLength}, i64);
  AffineMap first1 = AffineMap::get(1, 0, {builder.getAffineConstantExpr(0)}, &context);
  Value rows =
      linalg::GenericOp::create(
          builder, loc, TypeRange{rowsInit.getType()}, ValueRange{positions},
          ValueRange{rowsInit}, {first1, builder.getMultiDimIdentityMap(1)}, {parallel},
          [&](OpBuilder &b, Location l, ValueRange args) {
            Value t = arith::IndexCastOp::create(b, l, i64, linalg::IndexOp::create(b, l, 0));
            Value offset = arith::SubIOp::create(b, l, t, args[0]);
            Value zero = arith::ConstantOp::create(b, l, b.getI64IntegerAttr(0));
            Value last = arith::ConstantOp::create(b, l, b.getI64IntegerAttr(count - 1));
            Value clamped = arith::MinSIOp::create(
                b, l, arith::MaxSIOp::create(b, l, offset, zero), last);
            linalg::YieldOp::create(b, l, clamped);
          })
          .getResult(0);
  Value spread = kiln::GatherOp::create(builder, loc, fresh, rows); // [C, Hkv, D]

  AffineMap identity3 = builder.getMultiDimIdentityMap(3);
  AffineMap first3 = AffineMap::get(3, 0, {builder.getAffineConstantExpr(0)}, &context);
  Value init = tensor::EmptyOp::create(builder, loc, cacheType.getShape(),
                                       cacheType.getElementType());
  return linalg::GenericOp::create(
             builder, loc, TypeRange{cacheType}, ValueRange{positions, spread, cache},
             ValueRange{init}, {first3, identity3, identity3, identity3},
             {parallel, parallel, parallel},
             [&](OpBuilder &b, Location l, ValueRange args) {
               Value p0 = args[0];
               Value t = arith::IndexCastOp::create(b, l, i64, linalg::IndexOp::create(b, l, 0));
               Value end = arith::AddIOp::create(
                   b, l, p0, arith::ConstantOp::create(b, l, b.getI64IntegerAttr(count)));
               Value inside = arith::AndIOp::create(
                   b, l, arith::CmpIOp::create(b, l, arith::CmpIPredicate::sge, t, p0),
                   arith::CmpIOp::create(b, l, arith::CmpIPredicate::slt, t, end));
               linalg::YieldOp::create(
                   b, l, arith::SelectOp::create(b, l, inside, args[1], args[2]).getResult());
             })
      .getResult(0);
}

/// The additive attention mask [S, C] over the cache: token s sees rows t <= positions[s].
Value LlamaImporter::cacheMask(Value positions, Location loc) {
  Type f32 = builder.getF32Type();
  auto parallel = utils::IteratorType::parallel;
  AffineExpr s, t;
  bindDims(&context, s, t);
  Value init = tensor::EmptyOp::create(builder, loc, ArrayRef<int64_t>{sequence, cacheLength}, f32);
  return linalg::GenericOp::create(
             builder, loc, TypeRange{init.getType()}, ValueRange{positions}, ValueRange{init},
             {AffineMap::get(2, 0, {s}, &context), builder.getMultiDimIdentityMap(2)},
             {parallel, parallel},
             [&](OpBuilder &b, Location l, ValueRange args) {
               Value row = arith::IndexCastOp::create(b, l, b.getI64Type(),
                                                      linalg::IndexOp::create(b, l, 1));
               Value visible =
                   arith::CmpIOp::create(b, l, arith::CmpIPredicate::sle, row, args[0]);
               Value zero = arith::ConstantOp::create(b, l, b.getF32FloatAttr(0));
               Value masked =
                   arith::ConstantOp::create(b, l, b.getF32FloatAttr(float(kMaskedOut)));
               linalg::YieldOp::create(
                   b, l, arith::SelectOp::create(b, l, visible, zero, masked).getResult());
             })
      .getResult(0);
}

FailureOr<Value> LlamaImporter::block(int64_t index, Value x, Value positions,
                                      MutableArrayRef<Value> cache) {
  const LlamaConfig &c = config;
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

  // Attention: rms_norm, projections, heads, RoPE on q and k, causal GQA attention.
  Location loc = NameLoc::get(builder.getStringAttr(prefix + "attn"), fileLoc);
  FloatAttr epsilon = builder.getF32FloatAttr(float(c.rmsEpsilon));
  Value h = kiln::RmsNormOp::create(builder, loc, x, *attnNorm, epsilon);
  auto heads = [&](Value value, int64_t count, int64_t size) -> Value {
    auto type = RankedTensorType::get({sequence, count, size}, builder.getF32Type());
    return tensor::ExpandShapeOp::create(builder, loc, type, value,
                                         ArrayRef<ReassociationIndices>{{0}, {1, 2}});
  };
  auto rope = [&](Value value) -> Value {
    return kiln::RopeOp::create(builder, loc, value, positions,
                                builder.getF64FloatAttr(c.ropeTheta),
                                builder.getF64FloatAttr(c.ropeFreqScale),
                                builder.getI64IntegerAttr(c.rotaryDim),
                                kiln::RopeModeAttr::get(&context, kiln::RopeMode::interleaved));
  };
  Value q = rope(heads(matmulTransposed(h, *wq, loc), c.heads, c.keyLength));
  Value k = rope(heads(matmulTransposed(h, *wk, loc), c.kvHeads, c.keyLength));
  Value v = heads(matmulTransposed(h, *wv, loc), c.kvHeads, c.valueLength);
  Value attention;
  if (cache.empty()) {
    attention = kiln::AttentionOp::create(builder, loc, q, k, v, Value(),
                                          /*causal=*/true, FloatAttr());
  } else {
    cache[0] = writeCache(cache[0], k, positions, loc);
    cache[1] = writeCache(cache[1], v, positions, loc);
    attention = kiln::AttentionOp::create(builder, loc, q, cache[0], cache[1],
                                          cacheMask(positions, loc),
                                          /*causal=*/false, FloatAttr());
  }
  Value merged = tensor::CollapseShapeOp::create(
      builder, loc, RankedTensorType::get({sequence, outSize}, builder.getF32Type()),
      attention, ArrayRef<ReassociationIndices>{{0}, {1, 2}});
  x = add(x, matmulTransposed(merged, *wo, loc), loc);

  // Feed-forward: SwiGLU, down(silu(gate(h)) * up(h)).
  loc = NameLoc::get(builder.getStringAttr(prefix + "ffn"), fileLoc);
  h = kiln::RmsNormOp::create(builder, loc, x, *ffnNorm, epsilon);
  Value gate = matmulTransposed(h, *wGate, loc);
  Value up = matmulTransposed(h, *wUp, loc);
  Value act = elementwise({gate, up}, loc, [](OpBuilder &b, Location l, ValueRange args) {
    Value one = arith::ConstantOp::create(b, l, b.getF32FloatAttr(1));
    Value negated = arith::NegFOp::create(b, l, args[0]);
    Value denominator = arith::AddFOp::create(b, l, one, math::ExpOp::create(b, l, negated));
    Value silu = arith::DivFOp::create(b, l, args[0], denominator);
    return arith::MulFOp::create(b, l, silu, args[1]).getResult();
  });
  return add(x, matmulTransposed(act, *wDown, loc), loc);
}

OwningOpRef<ModuleOp> LlamaImporter::run(int64_t sequenceLength, bool kvCache,
                                         int64_t contextLength) {
  if (failed(readConfig()))
    return nullptr;
  const LlamaConfig &c = config;
  if (contextLength < 0 || contextLength > c.contextLength)
    return emitError(fileLoc) << "KV-cache context length " << contextLength
                              << " is outside the model's context of " << c.contextLength
                              << " tokens (llama.context_length)",
           nullptr;
  int64_t limit = c.contextLength;
  if (kvCache) {
    cacheLength = contextLength ? contextLength : std::min(c.contextLength, kDefaultCacheLength);
    limit = cacheLength;
  }
  if (sequenceLength < 0 || sequenceLength > limit)
    return emitError(fileLoc) << "sequence length " << sequenceLength
                              << (kvCache ? " is outside the KV cache of " : " is outside the model's context of ")
                              << limit
                              << (kvCache ? " tokens" : " tokens (llama.context_length)"),
           nullptr;
  int64_t tokens = sequenceLength ? sequenceLength : std::min(limit, kDefaultSequenceLength);

  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  builder.setInsertionPointToEnd(module->getBody());
  sequence = tokens;
  if (!kvCache) {
    if (failed(buildFunction("main")))
      return nullptr;
  } else {
    if (failed(buildFunction("prefill")))
      return nullptr;
    builder.setInsertionPointToEnd(module->getBody());
    sequence = 1;
    if (failed(buildFunction("decode")))
      return nullptr;
  }
  if (failed(checkAllTensorsUsed()) || failed(verify(*module)))
    return nullptr;
  return module;
}

LogicalResult LlamaImporter::buildFunction(StringRef funcName) {
  const LlamaConfig &c = config;
  weights.clear();
  Type f32 = builder.getF32Type();
  auto tokensType = RankedTensorType::get({sequence}, builder.getI32Type());
  auto positionsType = RankedTensorType::get({sequence}, builder.getI64Type());
  auto logitsType = RankedTensorType::get({sequence, c.vocab}, f32);
  SmallVector<Type> argTypes{tokensType, positionsType}, resultTypes{logitsType};
  SmallVector<std::string> stateNames;
  if (cacheLength) {
    auto kType = RankedTensorType::get({cacheLength, c.kvHeads, c.keyLength}, f32);
    auto vType = RankedTensorType::get({cacheLength, c.kvHeads, c.valueLength}, f32);
    for (int64_t i = 0; i < c.blocks; ++i) {
      stateNames.push_back("k_cache." + std::to_string(i));
      stateNames.push_back("v_cache." + std::to_string(i));
      argTypes.append({kType, vType});
      resultTypes.append({kType, vType});
    }
  }
  auto func = func::FuncOp::create(builder, fileLoc, funcName,
                                   builder.getFunctionType(argTypes, resultTypes));
  func.setArgAttr(0, "kiln.name", builder.getStringAttr("tokens"));
  func.setArgAttr(1, "kiln.name", builder.getStringAttr("positions"));
  func.setResultAttr(0, "kiln.name", builder.getStringAttr("logits"));
  for (auto [i, state] : llvm::enumerate(stateNames)) {
    func.setArgAttr(2 + i, "kiln.state", builder.getStringAttr(state));
    func.setResultAttr(1 + i, "kiln.state", builder.getStringAttr(state));
  }
  Block *body = func.addEntryBlock();
  builder.setInsertionPointToEnd(body);
  Value tokens = body->getArgument(0), positions = body->getArgument(1);
  SmallVector<Value> caches(body->getArguments().drop_front(2));

  // A packed embedding is gathered row by row, dequantizing only the rows used.
  FailureOr<Value> embedding = weight("token_embd.weight", {c.vocab, c.embedding});
  if (failed(embedding))
    return failure();
  Location embdLoc = tensorLoc("token_embd.weight");
  Value x = toF32(kiln::GatherOp::create(builder, embdLoc, *embedding, tokens), embdLoc);
  for (int64_t i = 0; i < c.blocks; ++i) {
    MutableArrayRef<Value> blockCache;
    if (cacheLength)
      blockCache = MutableArrayRef<Value>(caches).slice(2 * i, 2);
    FailureOr<Value> next = block(i, x, positions, blockCache);
    if (failed(next))
      return failure();
    x = *next;
  }
  FailureOr<Value> outputNorm = floatWeight("output_norm.weight", {c.embedding});
  // Without output.weight the output projection is tied to the token embedding.
  StringRef outputName = reader.findTensor("output.weight") ? "output.weight" : "token_embd.weight";
  FailureOr<Value> output = floatWeight(outputName, {c.vocab, c.embedding});
  if (failed(outputNorm) || failed(output))
    return failure();
  Location loc = tensorLoc(outputName);
  Value h = kiln::RmsNormOp::create(builder, loc, x, *outputNorm,
                                    builder.getF32FloatAttr(float(c.rmsEpsilon)));
  SmallVector<Value> results{matmulTransposed(h, *output, loc)};
  results.append(caches);
  func::ReturnOp::create(builder, loc, results);
  return success();
}

} // namespace

OwningOpRef<ModuleOp> kiln::importGguf(llvm::StringRef path, MLIRContext &context,
                                       int64_t sequenceLength, bool kvCache,
                                       int64_t contextLength) {
  Location fileLoc = FileLineColLoc::get(&context, path, 0, 0);
  kiln::Result<std::unique_ptr<GgufReader>> reader = GgufReader::open(path.str());
  if (!reader) {
    emitError(fileLoc) << reader.error();
    return nullptr;
  }
  kiln::Result<std::string_view> architecture = (*reader)->getString("general.architecture");
  if (!architecture) {
    emitError(fileLoc) << architecture.error();
    return nullptr;
  }
  if (*architecture != "llama") {
    emitError(fileLoc) << "unsupported architecture '" << *architecture
                       << "' (general.architecture); kiln imports: llama";
    return nullptr;
  }
  // kiln.weight sources are absolute so the artifact writer finds them from anywhere.
  SmallString<256> absolute(path);
  if (std::error_code error = llvm::sys::fs::make_absolute(absolute)) {
    emitError(fileLoc) << "cannot resolve '" << path << "': " << error.message();
    return nullptr;
  }
  context.loadDialect<kiln::KilnDialect, arith::ArithDialect, func::FuncDialect,
                      linalg::LinalgDialect, math::MathDialect, tensor::TensorDialect>();
  return LlamaImporter(context, fileLoc, std::string(absolute), **reader).run(sequenceLength, kvCache, contextLength);
}
