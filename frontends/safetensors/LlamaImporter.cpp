// Hugging Face LlamaForCausalLM (transformers' modeling_llama) from a model directory:
// config.json's hyperparameters fill a DecoderConfig, the checkpoint's tensors are
// found by their transformers names, and the shared decoder graph builds the forward
// pass. Transformers' RoPE rotates the two halves of each head (rotate_half), so the
// graph uses NeoX-style RoPE on the unpermuted q/k projections (GGUF conversions permute
// those rows instead and use adjacent pairs).
#include "frontends/safetensors/SafetensorsImporter.h"

#include "frontends/decoder/DecoderGraph.h"
#include "frontends/safetensors/ModelDirectory.h"
#include "frontends/safetensors/SafetensorsWeights.h"

#include "mlir/IR/Diagnostics.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <string>

using namespace mlir;
using kiln::decoder::DecoderConfig;

namespace {

/// Dimensions and counts larger than this are rejected (no real model comes near it;
/// it keeps products of two within int64).
constexpr int64_t kMaxSize = int64_t(1) << 31;

/// The transformers name of a tensor named as in GGUF ("blk.3.attn_q.weight").
std::string transformersName(StringRef name) {
  static const std::pair<const char *, const char *> kGlobal[] = {
      {"token_embd.weight", "model.embed_tokens.weight"},
      {"output_norm.weight", "model.norm.weight"},
      {"output.weight", "lm_head.weight"},
  };
  for (auto [gguf, hf] : kGlobal)
    if (name == gguf)
      return hf;
  static const std::pair<const char *, const char *> kBlock[] = {
      {"attn_norm", "input_layernorm"},        {"attn_q", "self_attn.q_proj"},
      {"attn_k", "self_attn.k_proj"},          {"attn_v", "self_attn.v_proj"},
      {"attn_output", "self_attn.o_proj"},     {"ffn_norm", "post_attention_layernorm"},
      {"ffn_gate", "mlp.gate_proj"},           {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"},
  };
  // blk.<i>.<part>.weight
  auto [blk, rest] = name.split('.');
  auto [index, tail] = rest.split('.');
  auto [part, suffix] = tail.split('.');
  if (blk == "blk")
    for (auto [gguf, hf] : kBlock)
      if (part == gguf)
        return ("model.layers." + index + "." + hf + "." + suffix).str();
  return name.str();
}

/// The checkpoint's tensors, asked for by GGUF names.
class TransformersNames : public kiln::decoder::WeightSource {
public:
  TransformersNames(const kiln::safetensors::ModelDirectory &model, MLIRContext &context,
                    bool tied)
      : tied(tied),
        weights(model.checkpoint(), context, [tied](StringRef name) {
          // Older checkpoints store RoPE's inverse frequencies (kiln.rope computes
          // them); a tied lm_head duplicates the embedding.
          return name.ends_with(".rotary_emb.inv_freq") || (tied && name == "lm_head.weight");
        }) {}

  FailureOr<Value> load(OpBuilder &builder, StringRef name, ArrayRef<int64_t> shape) override {
    return weights.load(builder, transformersName(name), shape);
  }
  bool contains(StringRef name) const override {
    return !(tied && name == "output.weight") && weights.contains(transformersName(name));
  }
  LogicalResult checkAllUsed() override { return weights.checkAllUsed(); }

private:
  bool tied;
  kiln::safetensors::SafetensorsWeights weights;
};

/// The hyperparameters from config.json, as transformers' LlamaConfig defines them.
FailureOr<DecoderConfig> readConfig(const kiln::safetensors::ModelDirectory &model,
                                    const kiln::decoder::WeightSource &weights,
                                    Location fileLoc) {
  const kiln::safetensors::JsonObject &json = model.config();
  auto report = [&](const std::string &error) { return emitError(fileLoc) << error; };
  auto size = [&](const std::string &key, std::optional<int64_t> fallback =
                                              std::nullopt) -> FailureOr<int64_t> {
    kiln::Result<int64_t> value = json.getInt(key, fallback);
    if (!value)
      return report(value.error());
    if (*value < 1 || *value > kMaxSize)
      return emitError(fileLoc) << "config.json: '" << key << "' must be between 1 and "
                                << kMaxSize << ", got " << *value;
    return *value;
  };
  DecoderConfig c;
  c.architecture = "LlamaForCausalLM";
  c.ropeMode = kiln::RopeMode::neox;
  c.contextLengthKey = "config.json max_position_embeddings";
  FailureOr<int64_t> hidden = size("hidden_size"), ffn = size("intermediate_size"),
                     layers = size("num_hidden_layers"), heads = size("num_attention_heads"),
                     vocab = size("vocab_size"), context = size("max_position_embeddings");
  if (failed(hidden) || failed(ffn) || failed(layers) || failed(heads) || failed(vocab) ||
      failed(context))
    return failure();
  c.embedding = *hidden;
  c.feedForward = *ffn;
  c.heads = *heads;
  c.vocab = *vocab;
  c.contextLength = *context;
  FailureOr<int64_t> kvHeads = size("num_key_value_heads", c.heads);
  if (failed(kvHeads))
    return failure();
  c.kvHeads = *kvHeads;
  if (c.heads % c.kvHeads != 0)
    return emitError(fileLoc) << "config.json: num_attention_heads (" << c.heads
                              << ") is not a multiple of num_key_value_heads (" << c.kvHeads
                              << ")";
  if (!json.has("head_dim") && c.embedding % c.heads != 0)
    return emitError(fileLoc) << "config.json: hidden_size (" << c.embedding
                              << ") is not a multiple of num_attention_heads (" << c.heads
                              << ")";
  FailureOr<int64_t> headDim = size("head_dim", c.embedding / c.heads);
  if (failed(headDim))
    return failure();
  c.keyLength = c.valueLength = c.rotaryDim = *headDim;
  if (c.rotaryDim % 2 != 0)
    return emitError(fileLoc) << "config.json: head_dim (" << c.rotaryDim << ") must be even";

  kiln::Result<double> epsilon = json.getFloat("rms_norm_eps", 1e-6);
  kiln::Result<double> theta = json.getFloat("rope_theta", 10000.0);
  kiln::Result<std::string> act = json.getString("hidden_act", std::string("silu"));
  kiln::Result<bool> attentionBias = json.getBool("attention_bias", false);
  kiln::Result<bool> mlpBias = json.getBool("mlp_bias", false);
  for (const std::string *error :
       {epsilon ? nullptr : &epsilon.error(), theta ? nullptr : &theta.error(),
        act ? nullptr : &act.error(), attentionBias ? nullptr : &attentionBias.error(),
        mlpBias ? nullptr : &mlpBias.error()})
    if (error)
      return report(*error);
  if (!std::isfinite(*epsilon) || *epsilon < 0 || !std::isfinite(*theta) || *theta <= 0)
    return emitError(fileLoc) << "config.json: rms_norm_eps must be non-negative and "
                                 "rope_theta positive";
  if (*act != "silu")
    return emitError(fileLoc) << "config.json: hidden_act '" << *act
                              << "' is not supported for LlamaForCausalLM (kiln: silu)";
  if (*attentionBias || *mlpBias)
    return emitError(fileLoc) << "config.json: attention_bias / mlp_bias are not supported";
  c.normEpsilon = *epsilon;

  // rope_scaling: null, or {"rope_type" (or "type"): "linear", "factor": F}.
  double freqScale = 1;
  std::ifstream file(json.path());
  nlohmann::json raw = nlohmann::json::parse(file, nullptr, /*allow_exceptions=*/false);
  if (raw.is_object() && raw.contains("rope_scaling") && !raw["rope_scaling"].is_null()) {
    const nlohmann::json &scaling = raw["rope_scaling"];
    std::string type = scaling.value("rope_type", scaling.value("type", std::string()));
    if (type != "linear" || !scaling.contains("factor") || !scaling["factor"].is_number() ||
        scaling["factor"].get<double>() <= 0)
      return emitError(fileLoc) << "config.json: rope_scaling " << scaling.dump()
                                << " is not supported (kiln: null or linear with a positive "
                                   "factor)";
    freqScale = 1.0 / scaling["factor"].get<double>();
  }
  if (failed(kiln::decoder::checkBlockCount(
          fileLoc, "config.json: num_hidden_layers", *layers, weights,
          [](int64_t i) { return "blk." + std::to_string(i) + ".attn_norm.weight"; })))
    return failure();
  for (int64_t i = 0; i < *layers; ++i)
    c.layers.push_back({0, *theta, freqScale});
  return c;
}

} // namespace

OwningOpRef<ModuleOp> kiln::importLlamaForCausalLM(const safetensors::ModelDirectory &model,
                                                   MLIRContext &context, Location fileLoc,
                                                   const ImportOptions &options) {
  kiln::Result<bool> tied = model.config().getBool("tie_word_embeddings", false);
  if (!tied) {
    emitError(fileLoc) << tied.error();
    return nullptr;
  }
  TransformersNames weights(model, context, *tied);
  FailureOr<DecoderConfig> config = readConfig(model, weights, fileLoc);
  if (failed(config))
    return nullptr;
  return decoder::buildDecoder(context, fileLoc, *config, weights,
                               {options.sequenceLength, options.kvCache, options.contextLength,
                                options.fullWindowCaches});
}
