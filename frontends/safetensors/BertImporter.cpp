// Builds kiln IR for a BERT encoder from a Hugging Face model directory: the forward
// pass of transformers' BertModel (modeling_bert.py: embeddings, post-LayerNorm
// encoder blocks with erf GELU) followed by sentence-transformers' mean pooling over
// the attention mask and L2 normalization, all as linalg and kiln ops.
#include "frontends/safetensors/SafetensorsImporter.h"

#include "ModelDirectory.h"
#include "frontends/common/LinalgBuilder.h"
#include "frontends/safetensors/SafetensorsWeights.h"

#include "dialects/Kiln/KilnDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"

#include <cmath>
#include <string>

using namespace mlir;
using kiln::safetensors::JsonObject;
using kiln::safetensors::ModelDirectory;
using kiln::safetensors::SafetensorsWeights;

namespace {

/// Dimensions larger than this are rejected before any arithmetic on them.
constexpr int64_t kMaxSize = int64_t(1) << 31;

/// Tokens per sequence when the caller does not choose (capped by the model's
/// position table): sentence encoders rarely need more, and cost grows with S².
constexpr int64_t kDefaultSequenceLength = 128;

/// The additive attention bias of a padded key: large but finite, so a sequence whose
/// mask is all zero still gets a finite softmax (uniform), never NaN.
constexpr double kMaskedOut = -1.0e30;

/// sentence-transformers' Pooling divides by max(token count, 1e-9) and Normalize is
/// torch.nn.functional.normalize, which divides by max(norm, 1e-12).
constexpr double kMinTokenCount = 1e-9;
constexpr double kMinNorm = 1e-12;

/// BertConfig fields (transformers' configuration_bert.py), with its defaults.
struct BertConfig {
  int64_t vocab = 0;
  int64_t hidden = 0;
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t intermediate = 0;
  int64_t maxPositions = 0;
  int64_t typeVocab = 2;
  double layerNormEps = 1e-12;
};

class BertImporter {
public:
  BertImporter(MLIRContext &context, Location fileLoc, const ModelDirectory &model)
      : context(context), model(model), builder(&context), build(builder), fileLoc(fileLoc),
        weights(model.checkpoint(), context, [this](StringRef name) {
          // BertModel's position-id buffer and the [CLS] pooler head are never read.
          return name.ends_with("embeddings.position_ids") ||
                 name.starts_with(prefix + "pooler.");
        }) {}

  OwningOpRef<ModuleOp> run(const kiln::ImportOptions &options);

private:
  LogicalResult readConfig();
  LogicalResult checkPooling();
  FailureOr<int64_t> count(StringRef key, std::optional<int64_t> fallback = std::nullopt);

  // Weights, by name without the checkpoint's prefix.
  Location tensorLoc(StringRef name) { return weights.tensorLoc(prefix + name.str()); }
  FailureOr<Value> weight(StringRef name, ArrayRef<int64_t> shape) {
    return weights.load(builder, prefix + name.str(), shape);
  }
  FailureOr<Value> floatWeight(StringRef name, ArrayRef<int64_t> shape);

  // Graph pieces.
  FailureOr<Value> linear(Value x, StringRef name, int64_t out, int64_t in);
  FailureOr<Value> layerNorm(Value x, StringRef name);
  FailureOr<Value> layer(int64_t index, Value x, Value mask);
  Value attentionMask(Value mask, Location loc);
  Value meanPoolAndNormalize(Value x, Value mask, Location loc);

  MLIRContext &context;
  const ModelDirectory &model;
  OpBuilder builder;
  kiln::LinalgBuilder build;
  Location fileLoc;
  BertConfig config;
  std::string prefix; // "" or "bert." (checkpoints saved from BertFor* models)
  SafetensorsWeights weights;
  int64_t batch = 0, sequence = 0;
};

FailureOr<int64_t> BertImporter::count(StringRef key, std::optional<int64_t> fallback) {
  kiln::Result<int64_t> value = model.config().getInt(key.str(), fallback);
  if (!value)
    return emitError(fileLoc) << value.error();
  if (*value <= 0 || *value > kMaxSize)
    return emitError(fileLoc) << "config.json key '" << key << "' must be between 1 and "
                              << kMaxSize << ", got " << *value;
  return *value;
}

LogicalResult BertImporter::readConfig() {
  BertConfig &c = config;
  FailureOr<int64_t> vocab = count("vocab_size"), hidden = count("hidden_size"),
                     layers = count("num_hidden_layers"), heads = count("num_attention_heads"),
                     intermediate = count("intermediate_size"),
                     maxPositions = count("max_position_embeddings"),
                     typeVocab = count("type_vocab_size", 2);
  if (failed(vocab) || failed(hidden) || failed(layers) || failed(heads) ||
      failed(intermediate) || failed(maxPositions) || failed(typeVocab))
    return failure();
  c.vocab = *vocab;
  c.hidden = *hidden;
  c.layers = *layers;
  c.heads = *heads;
  c.intermediate = *intermediate;
  c.maxPositions = *maxPositions;
  c.typeVocab = *typeVocab;
  if (c.hidden % c.heads != 0)
    return emitError(fileLoc) << "config.json hidden_size (" << c.hidden
                              << ") is not a multiple of num_attention_heads (" << c.heads << ")";
  const JsonObject &json = model.config();
  kiln::Result<double> eps = json.getFloat("layer_norm_eps", 1e-12);
  if (!eps)
    return emitError(fileLoc) << eps.error();
  if (!std::isfinite(*eps) || *eps < 0)
    return emitError(fileLoc) << "config.json layer_norm_eps must be finite and non-negative, "
                              << "got " << *eps;
  c.layerNormEps = *eps;
  kiln::Result<std::string> activation = json.getString("hidden_act", std::string("gelu"));
  if (!activation)
    return emitError(fileLoc) << activation.error();
  if (*activation != "gelu")
    return emitError(fileLoc) << "config.json hidden_act '" << *activation
                              << "' is not supported; kiln implements 'gelu' (erf)";
  kiln::Result<std::string> positions =
      json.getString("position_embedding_type", std::string("absolute"));
  if (!positions)
    return emitError(fileLoc) << positions.error();
  if (*positions != "absolute")
    return emitError(fileLoc) << "config.json position_embedding_type '" << *positions
                              << "' is not supported; kiln implements 'absolute'";
  kiln::Result<bool> decoder = json.getBool("is_decoder", false);
  if (!decoder)
    return emitError(fileLoc) << decoder.error();
  if (*decoder)
    return emitError(fileLoc) << "config.json is_decoder: BERT as a decoder is not supported";

  if (!model.checkpoint().find("embeddings.word_embeddings.weight").tensor &&
      model.checkpoint().find("bert.embeddings.word_embeddings.weight").tensor)
    prefix = "bert.";
  return success();
}

/// sentence-transformers' pooling choice (1_Pooling/config.json); without the file,
/// mean pooling, sentence-transformers' default for a plain transformer.
LogicalResult BertImporter::checkPooling() {
  std::optional<std::string> path = model.file("1_Pooling/config.json");
  if (!path)
    return success();
  kiln::Result<JsonObject> pooling = JsonObject::read(*path);
  Location loc = FileLineColLoc::get(&context, *path, 0, 0);
  if (!pooling)
    return emitError(loc) << pooling.error();
  for (const char *mode : {"pooling_mode_cls_token", "pooling_mode_max_tokens",
                           "pooling_mode_mean_sqrt_len_tokens",
                           "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"}) {
    kiln::Result<bool> enabled = pooling->getBool(mode, false);
    if (!enabled)
      return emitError(loc) << enabled.error();
    if (*enabled)
      return emitError(loc) << "pooling mode '" << mode
                            << "' is not implemented; kiln implements pooling_mode_mean_tokens";
  }
  kiln::Result<bool> mean = pooling->getBool("pooling_mode_mean_tokens");
  if (!mean)
    return emitError(loc) << mean.error();
  if (!*mean)
    return emitError(loc) << "no pooling mode is enabled; kiln implements "
                             "pooling_mode_mean_tokens";
  return success();
}

FailureOr<Value> BertImporter::floatWeight(StringRef name, ArrayRef<int64_t> shape) {
  FailureOr<Value> value = weight(name, shape);
  if (failed(value))
    return failure();
  return build.toF32(*value, value->getLoc());
}

/// torch.nn.Linear `<name>.weight` [out, in] and `<name>.bias` [out] on x: [M, in].
FailureOr<Value> BertImporter::linear(Value x, StringRef name, int64_t out, int64_t in) {
  FailureOr<Value> w = floatWeight((name + ".weight").str(), {out, in});
  FailureOr<Value> bias = weight((name + ".bias").str(), {out});
  if (failed(w) || failed(bias))
    return failure();
  Location loc = tensorLoc(name.str() + ".weight");
  // All tokens' rows at once: the transposed copy of w is the faster form (see WeightRead).
  Value product = build.matmulTransposed(x, *w, loc, kiln::WeightRead::TransposedCopy);
  AffineExpr m, n;
  bindDims(&context, m, n);
  return build.generic(
      {product, *bias}, {builder.getMultiDimIdentityMap(2), AffineMap::get(2, 0, {n}, &context)},
      {cast<RankedTensorType>(x.getType()).getDimSize(0), out},
      [](OpBuilder &b, Location l, ValueRange args) -> Value {
        return arith::AddFOp::create(b, l, args[0], args[1]);
      },
      loc);
}

/// torch.nn.LayerNorm over the last dimension of x: [M, H] with `<name>.weight` and
/// `<name>.bias`: (x - mean) / sqrt(var + eps) * weight + bias, the biased variance
/// computed from the centred values (two passes, as torch does, for accuracy).
FailureOr<Value> BertImporter::layerNorm(Value x, StringRef name) {
  int64_t h = config.hidden;
  FailureOr<Value> gamma = weight((name + ".weight").str(), {h});
  FailureOr<Value> beta = weight((name + ".bias").str(), {h});
  if (failed(gamma) || failed(beta))
    return failure();
  Location loc = tensorLoc(name.str() + ".weight");
  int64_t rows = cast<RankedTensorType>(x.getType()).getDimSize(0);
  AffineExpr m, k;
  bindDims(&context, m, k);
  AffineMap all = builder.getMultiDimIdentityMap(2), row = AffineMap::get(2, 0, {m}, &context),
            column = AffineMap::get(2, 0, {k}, &context);
  auto sumOf = [&](Value input, bool square) {
    return build.generic(
        input, {all}, {rows},
        [&](OpBuilder &b, Location l, ValueRange args) -> Value {
          Value term = square ? arith::MulFOp::create(b, l, args[0], args[0]) : args[0];
          return arith::AddFOp::create(b, l, args[1], term);
        },
        loc, /*reductionDims=*/1);
  };
  float inverseH = 1.0f / float(h);
  Value sum = sumOf(x, false);
  Value centered = build.generic(
      {x, sum}, {all, row}, {rows, h},
      [&](OpBuilder &b, Location l, ValueRange args) -> Value {
        Value scale = arith::ConstantOp::create(b, l, b.getF32FloatAttr(inverseH));
        Value mean = arith::MulFOp::create(b, l, args[1], scale);
        return arith::SubFOp::create(b, l, args[0], mean);
      },
      loc);
  Value squares = sumOf(centered, true);
  float eps = float(config.layerNormEps);
  return build.generic(
      {centered, squares, *gamma, *beta}, {all, row, column, column}, {rows, h},
      [&](OpBuilder &b, Location l, ValueRange args) -> Value {
        Value scale = arith::ConstantOp::create(b, l, b.getF32FloatAttr(inverseH));
        Value epsilon = arith::ConstantOp::create(b, l, b.getF32FloatAttr(eps));
        Value variance = arith::MulFOp::create(b, l, args[1], scale);
        Value inverse = math::RsqrtOp::create(b, l, arith::AddFOp::create(b, l, variance, epsilon));
        Value normalized = arith::MulFOp::create(b, l, args[0], inverse);
        return arith::AddFOp::create(b, l, arith::MulFOp::create(b, l, normalized, args[2]),
                                     args[3]);
      },
      loc);
}

/// The additive bias [B, S, S] of each sequence's attention: 0 for a real key, a large
/// negative number for padding (attention_mask == 0), as BertModel's extended mask.
Value BertImporter::attentionMask(Value mask, Location loc) {
  AffineExpr b, s, t;
  bindDims(&context, b, s, t);
  return build.generic(
      mask, {AffineMap::get(3, 0, {b, t}, &context)}, {batch, sequence, sequence},
      [](OpBuilder &ob, Location l, ValueRange args) -> Value {
        Value zeroI = arith::ConstantOp::create(ob, l, ob.getI32IntegerAttr(0));
        Value real = arith::CmpIOp::create(ob, l, arith::CmpIPredicate::ne, args[0], zeroI);
        Value zero = arith::ConstantOp::create(ob, l, ob.getF32FloatAttr(0));
        Value masked = arith::ConstantOp::create(ob, l, ob.getF32FloatAttr(float(kMaskedOut)));
        return arith::SelectOp::create(ob, l, real, zero, masked);
      },
      loc);
}

FailureOr<Value> BertImporter::layer(int64_t index, Value x, Value mask) {
  const BertConfig &c = config;
  std::string name = "encoder.layer." + std::to_string(index) + ".";
  int64_t headSize = c.hidden / c.heads, rows = batch * sequence;
  FailureOr<Value> q = linear(x, name + "attention.self.query", c.hidden, c.hidden);
  FailureOr<Value> k = linear(x, name + "attention.self.key", c.hidden, c.hidden);
  FailureOr<Value> v = linear(x, name + "attention.self.value", c.hidden, c.hidden);
  if (failed(q) || failed(k) || failed(v))
    return failure();
  Location loc = NameLoc::get(builder.getStringAttr(prefix + name + "attention"), fileLoc);
  auto heads = [&](Value value) -> Value {
    auto type = RankedTensorType::get({batch, sequence, c.heads, headSize}, builder.getF32Type());
    return tensor::ExpandShapeOp::create(builder, loc, type, value,
                                         ArrayRef<ReassociationIndices>{{0, 1}, {2, 3}});
  };
  Value attention = kiln::AttentionOp::create(builder, loc, heads(*q), heads(*k), heads(*v),
                                              mask, /*offset=*/Value(), /*causal=*/false,
                                              FloatAttr(), IntegerAttr(), IntegerAttr());
  Value merged = tensor::CollapseShapeOp::create(
      builder, loc, RankedTensorType::get({rows, c.hidden}, builder.getF32Type()), attention,
      ArrayRef<ReassociationIndices>{{0, 1}, {2, 3}});
  FailureOr<Value> projected = linear(merged, name + "attention.output.dense", c.hidden, c.hidden);
  if (failed(projected))
    return failure();
  FailureOr<Value> h =
      layerNorm(build.add(*projected, x, loc), name + "attention.output.LayerNorm");
  if (failed(h))
    return failure();

  // Feed-forward: GELU(erf), 0.5 x (1 + erf(x / sqrt 2)) (transformers' GELUActivation).
  FailureOr<Value> up = linear(*h, name + "intermediate.dense", c.intermediate, c.hidden);
  if (failed(up))
    return failure();
  Value act = build.elementwise(*up, loc, [](OpBuilder &b, Location l, ValueRange args) -> Value {
    Value half = arith::ConstantOp::create(b, l, b.getF32FloatAttr(0.5f));
    Value one = arith::ConstantOp::create(b, l, b.getF32FloatAttr(1.0f));
    Value invSqrt2 = arith::ConstantOp::create(b, l, b.getF32FloatAttr(float(M_SQRT1_2)));
    Value erf = math::ErfOp::create(b, l, arith::MulFOp::create(b, l, args[0], invSqrt2));
    Value gate = arith::MulFOp::create(b, l, half, arith::AddFOp::create(b, l, one, erf));
    return arith::MulFOp::create(b, l, args[0], gate);
  });
  FailureOr<Value> down = linear(act, name + "output.dense", c.hidden, c.intermediate);
  if (failed(down))
    return failure();
  return layerNorm(build.add(*down, *h, loc), name + "output.LayerNorm");
}

/// sentence-transformers' Pooling (mean over tokens whose mask is non-zero) and
/// Normalize (unit L2 norm) on the last hidden state x: [B*S, H] -> [B, H].
Value BertImporter::meanPoolAndNormalize(Value x, Value mask, Location loc) {
  int64_t h = config.hidden;
  Value tokens = tensor::ExpandShapeOp::create(
      builder, loc, RankedTensorType::get({batch, sequence, h}, builder.getF32Type()), x,
      ArrayRef<ReassociationIndices>{{0, 1}, {2}});
  Value weights =
      build.elementwise(mask, loc, [](OpBuilder &b, Location l, ValueRange args) -> Value {
        Value zeroI = arith::ConstantOp::create(b, l, b.getI32IntegerAttr(0));
        Value real = arith::CmpIOp::create(b, l, arith::CmpIPredicate::ne, args[0], zeroI);
        return arith::UIToFPOp::create(b, l, b.getF32Type(), real);
      });
  AffineExpr bd, hd, sd;
  bindDims(&context, bd, hd, sd);
  auto accumulate = [](OpBuilder &b, Location l, ValueRange args) -> Value {
    return arith::AddFOp::create(b, l, args.back(),
                                 args.size() == 3 ? arith::MulFOp::create(b, l, args[0], args[1])
                                                  : args[0]);
  };
  // sum_s x[b, s, h] * w[b, s] over iteration space (b, h, s).
  Value summed = build.generic(
      {tokens, weights},
      {AffineMap::get(3, 0, {bd, sd, hd}, &context), AffineMap::get(3, 0, {bd, sd}, &context)},
      {batch, h}, accumulate, loc, /*reductionDims=*/1);
  Value counts =
      build.generic(weights, {builder.getMultiDimIdentityMap(2)}, {batch}, accumulate, loc,
                    /*reductionDims=*/1);
  AffineExpr b2, h2;
  bindDims(&context, b2, h2);
  AffineMap all = builder.getMultiDimIdentityMap(2), row = AffineMap::get(2, 0, {b2}, &context);
  Value mean = build.generic(
      {summed, counts}, {all, row}, {batch, h},
      [](OpBuilder &b, Location l, ValueRange args) -> Value {
        Value floor = arith::ConstantOp::create(b, l, b.getF32FloatAttr(float(kMinTokenCount)));
        return arith::DivFOp::create(b, l, args[0],
                                     arith::MaximumFOp::create(b, l, args[1], floor));
      },
      loc);
  Value squares = build.generic(
      mean, {all}, {batch},
      [](OpBuilder &b, Location l, ValueRange args) -> Value {
        return arith::AddFOp::create(b, l, args[1], arith::MulFOp::create(b, l, args[0], args[0]));
      },
      loc, /*reductionDims=*/1);
  return build.generic(
      {mean, squares}, {all, row}, {batch, h},
      [](OpBuilder &b, Location l, ValueRange args) -> Value {
        Value floor = arith::ConstantOp::create(b, l, b.getF32FloatAttr(float(kMinNorm)));
        Value norm = math::SqrtOp::create(b, l, args[1]);
        return arith::DivFOp::create(b, l, args[0], arith::MaximumFOp::create(b, l, norm, floor));
      },
      loc);
}

OwningOpRef<ModuleOp> BertImporter::run(const kiln::ImportOptions &options) {
  if (failed(readConfig()) || failed(checkPooling()))
    return nullptr;
  const BertConfig &c = config;
  if (options.sequenceLength < 0 || options.sequenceLength > c.maxPositions)
    return emitError(fileLoc) << "sequence length " << options.sequenceLength
                              << " is outside the model's " << c.maxPositions
                              << " positions (config.json max_position_embeddings)",
           nullptr;
  if (options.batchSize < 0 || options.batchSize > kMaxSize / c.maxPositions)
    return emitError(fileLoc) << "batch size " << options.batchSize << " is out of range",
           nullptr;
  sequence = options.sequenceLength ? options.sequenceLength
                                    : std::min(c.maxPositions, kDefaultSequenceLength);
  batch = options.batchSize ? options.batchSize : 1;

  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  builder.setInsertionPointToEnd(module->getBody());
  auto ids = RankedTensorType::get({batch, sequence}, builder.getI32Type());
  auto func = func::FuncOp::create(
      builder, fileLoc, "embed",
      builder.getFunctionType({ids, ids, ids},
                              {RankedTensorType::get({batch, c.hidden}, builder.getF32Type())}));
  const char *argNames[] = {"input_ids", "attention_mask", "token_type_ids"};
  for (auto [i, name] : llvm::enumerate(argNames))
    func.setArgAttr(i, "kiln.name", builder.getStringAttr(name));
  func.setResultAttr(0, "kiln.name", builder.getStringAttr("embeddings"));
  Block *body = func.addEntryBlock();
  builder.setInsertionPointToEnd(body);
  Value inputIds = body->getArgument(0), mask = body->getArgument(1),
        tokenTypes = body->getArgument(2);

  // Embeddings: word + absolute position (rows 0 .. S-1) + token type, then LayerNorm.
  FailureOr<Value> words = weight("embeddings.word_embeddings.weight", {c.vocab, c.hidden});
  FailureOr<Value> positions =
      weight("embeddings.position_embeddings.weight", {c.maxPositions, c.hidden});
  FailureOr<Value> types =
      weight("embeddings.token_type_embeddings.weight", {c.typeVocab, c.hidden});
  if (failed(words) || failed(positions) || failed(types))
    return nullptr;
  Location loc = tensorLoc("embeddings.word_embeddings.weight");
  Value wordRows = kiln::GatherOp::create(builder, loc, *words, inputIds);
  Value typeRows = kiln::GatherOp::create(builder, loc, *types, tokenTypes);
  Value positionRows = tensor::ExtractSliceOp::create(
      builder, loc, *positions,
      ArrayRef<OpFoldResult>{builder.getIndexAttr(0), builder.getIndexAttr(0)},
      ArrayRef<OpFoldResult>{builder.getIndexAttr(sequence), builder.getIndexAttr(c.hidden)},
      ArrayRef<OpFoldResult>{builder.getIndexAttr(1), builder.getIndexAttr(1)});
  AffineExpr b, s, h;
  bindDims(&context, b, s, h);
  AffineMap all = builder.getMultiDimIdentityMap(3);
  Value summed = build.generic(
      {wordRows, positionRows, typeRows}, {all, AffineMap::get(3, 0, {s, h}, &context), all},
      {batch, sequence, c.hidden},
      [](OpBuilder &ob, Location l, ValueRange args) -> Value {
        return arith::AddFOp::create(ob, l, arith::AddFOp::create(ob, l, args[0], args[1]),
                                     args[2]);
      },
      loc);
  Value flat = tensor::CollapseShapeOp::create(
      builder, loc, RankedTensorType::get({batch * sequence, c.hidden}, builder.getF32Type()),
      summed, ArrayRef<ReassociationIndices>{{0, 1}, {2}});
  FailureOr<Value> x = layerNorm(flat, "embeddings.LayerNorm");
  if (failed(x))
    return nullptr;

  Value bias = attentionMask(mask, loc);
  for (int64_t i = 0; i < c.layers; ++i) {
    x = layer(i, *x, bias);
    if (failed(x))
      return nullptr;
  }
  Location poolLoc = NameLoc::get(builder.getStringAttr("pooling"), fileLoc);
  func::ReturnOp::create(builder, poolLoc, meanPoolAndNormalize(*x, mask, poolLoc));
  if (failed(weights.checkAllUsed()) || failed(verify(*module)))
    return nullptr;
  return module;
}

} // namespace

OwningOpRef<ModuleOp> kiln::importBert(const ModelDirectory &model, MLIRContext &context,
                                       Location fileLoc, const ImportOptions &options) {
  context.loadDialect<kiln::KilnDialect, arith::ArithDialect, func::FuncDialect,
                      linalg::LinalgDialect, math::MathDialect, tensor::TensorDialect>();
  return BertImporter(context, fileLoc, model).run(options);
}
