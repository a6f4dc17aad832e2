// Builds kiln IR from a GGUF model: the architecture's hyperparameters from its
// `<arch>.*` metadata (llama.cpp's keys), the variant's traits from one table, and
// weights as kiln.weight ops on the file's tensor bytes; the forward pass itself is the
// shared decoder graph (frontends/decoder).
#include "frontends/gguf/GgufImporter.h"

#include "frontends/decoder/DecoderGraph.h"
#include "frontends/gguf/GgufReader.h"
#include "frontends/recurrent/MambaGraph.h"
#include "frontends/recurrent/Rwkv6Graph.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"

#include <cmath>
#include <string>

using namespace mlir;
using kiln::decoder::DecoderConfig;
using kiln::decoder::FeedForward;
using kiln::gguf::GgufReader;
using kiln::gguf::TensorInfo;

namespace {

/// Dimensions, counts and lengths larger than this are rejected before any arithmetic
/// on them (no real model comes near it; it keeps products of two within int64).
constexpr int64_t kMaxSize = int64_t(1) << 31;

/// The graph an architecture's metadata fills.
enum class Graph {
  Decoder, ///< the decoder-only transformer (frontends/decoder), a DecoderConfig
  Mamba,   ///< Mamba v1 and v2 (frontends/recurrent), a MambaConfig; the traits below are unused
  Rwkv6,   ///< RWKV-6 and -7 (frontends/recurrent), an Rwkv6Config; the traits below are unused
};

/// What a GGUF architecture name means beyond its metadata: the traits llama.cpp
/// hard-codes per architecture (llama-model.cpp, llama-arch.cpp). The next
/// architecture of this family is one more row.
struct Architecture {
  const char *name;
  Graph graph;
  kiln::RopeMode ropeMode;
  FeedForward feedForward;
  bool queryKeyNorm;
  bool postNorms;
  /// Token embeddings are multiplied by sqrt(embedding_length).
  bool scaleEmbedding;
  /// With `<arch>.attention.sliding_window`, layer i is a sliding-window layer unless
  /// (i + 1) % slidingWindowPeriod == 0; 0 = no sliding-window layers.
  int64_t slidingWindowPeriod;
  /// RoPE base of the sliding-window layers (they are never frequency-scaled).
  double slidingWindowRopeTheta;
};

constexpr Architecture kArchitectures[] = {
    {"llama", Graph::Decoder, kiln::RopeMode::interleaved, FeedForward::SwiGlu, false, false,
     false, 0, 0},
    {"gemma3", Graph::Decoder, kiln::RopeMode::neox, FeedForward::GeGluTanh, true, true, true,
     6, 10000},
    {"mamba", Graph::Mamba, kiln::RopeMode::interleaved, FeedForward::SwiGlu, false, false,
     false, 0, 0},
    {"mamba2", Graph::Mamba, kiln::RopeMode::interleaved, FeedForward::SwiGlu, false, false,
     false, 0, 0},
    {"rwkv6", Graph::Rwkv6, kiln::RopeMode::interleaved, FeedForward::SwiGlu, false, false,
     false, 0, 0},
    {"rwkv7", Graph::Rwkv6, kiln::RopeMode::interleaved, FeedForward::SwiGlu, false, false,
     false, 0, 0},
};

std::string supportedArchitectures() {
  std::string names;
  for (const Architecture &arch : kArchitectures)
    names += (names.empty() ? "" : ", ") + std::string(arch.name);
  return names;
}

std::string formatShape(ArrayRef<int64_t> shape) {
  std::string text = "[";
  for (auto [i, dim] : llvm::enumerate(shape))
    text += (i ? ", " : "") + std::to_string(dim);
  return text + "]";
}

/// Reads an architecture's hyperparameters from the metadata into a DecoderConfig.
class GgufConfigReader {
public:
  GgufConfigReader(const GgufReader &reader, const Architecture &arch,
                   const kiln::decoder::WeightSource &weights, Location fileLoc)
      : reader(reader), arch(arch), weights(weights), fileLoc(fileLoc) {}

  FailureOr<DecoderConfig> read();
  FailureOr<kiln::recurrent::MambaConfig> readMamba();
  FailureOr<kiln::recurrent::Rwkv6Config> readRwkv6();

private:
  /// The vocabulary size from token_embd.weight ([vocab, embedding]).
  FailureOr<int64_t> vocabulary(int64_t embedding);
  std::string key(StringRef suffix) const { return (arch.name + ("." + suffix)).str(); }
  FailureOr<int64_t> count(StringRef suffix, std::optional<int64_t> fallback = std::nullopt);
  FailureOr<double> real(StringRef suffix, std::optional<double> fallback = std::nullopt);
  /// The linear RoPE frequency scale: 1 without scaling.
  FailureOr<double> ropeFreqScale();

  const GgufReader &reader;
  const Architecture &arch;
  const kiln::decoder::WeightSource &weights;
  Location fileLoc;
};

FailureOr<int64_t> GgufConfigReader::count(StringRef suffix, std::optional<int64_t> fallback) {
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

FailureOr<double> GgufConfigReader::real(StringRef suffix, std::optional<double> fallback) {
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

FailureOr<double> GgufConfigReader::ropeFreqScale() {
  // As llama.cpp reads it: the type defaults to linear; the factor comes from
  // rope.scaling.factor, else the older rope.scale_linear; 0 means none.
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
  if (scaling == "none")
    return 1.0;
  if (scaling != "linear")
    return emitError(fileLoc) << "unsupported rope scaling type '" << scaling << "' ("
                              << key("rope.scaling.type") << "); kiln supports none and linear";
  return *factor == 0 ? 1.0 : 1.0 / *factor;
}

FailureOr<DecoderConfig> GgufConfigReader::read() {
  DecoderConfig c;
  c.architecture = arch.name;
  c.ropeMode = arch.ropeMode;
  c.feedForwardKind = arch.feedForward;
  c.queryKeyNorm = arch.queryKeyNorm;
  c.postNorms = arch.postNorms;
  FailureOr<int64_t> contextLength = count("context_length"),
                     embedding = count("embedding_length"), blocks = count("block_count"),
                     feedForward = count("feed_forward_length"),
                     heads = count("attention.head_count");
  FailureOr<double> epsilon = real("attention.layer_norm_rms_epsilon");
  if (failed(contextLength) || failed(embedding) || failed(blocks) || failed(feedForward) ||
      failed(heads) || failed(epsilon))
    return failure();
  c.contextLength = *contextLength;
  c.contextLengthKey = key("context_length");
  c.embedding = *embedding;
  c.feedForward = *feedForward;
  c.heads = *heads;
  c.normEpsilon = *epsilon;
  if (arch.scaleEmbedding)
    c.embeddingScale = std::sqrt(float(c.embedding)); // in f32, as llama.cpp

  FailureOr<int64_t> kvHeads = count("attention.head_count_kv", c.heads);
  if (failed(kvHeads))
    return failure();
  c.kvHeads = *kvHeads;
  if (c.heads % c.kvHeads != 0)
    return emitError(fileLoc) << key("attention.head_count") << " (" << c.heads
                              << ") is not a multiple of " << key("attention.head_count_kv")
                              << " (" << c.kvHeads << ")";
  if (!reader.find(key("attention.key_length")) && c.embedding % c.heads != 0)
    return emitError(fileLoc) << key("embedding_length") << " (" << c.embedding
                              << ") is not a multiple of " << key("attention.head_count")
                              << " (" << c.heads << ")";
  FailureOr<int64_t> keyLength = count("attention.key_length", c.embedding / c.heads);
  if (failed(keyLength))
    return failure();
  c.keyLength = *keyLength;
  FailureOr<int64_t> valueLength = count("attention.value_length", c.keyLength);
  FailureOr<int64_t> rotaryDim = count("rope.dimension_count", c.keyLength);
  FailureOr<double> theta = real("rope.freq_base", 10000.0);
  FailureOr<double> freqScale = ropeFreqScale();
  FailureOr<double> softcap = real("final_logit_softcapping", 0.0);
  if (failed(valueLength) || failed(rotaryDim) || failed(theta) || failed(freqScale) ||
      failed(softcap))
    return failure();
  c.valueLength = *valueLength;
  c.rotaryDim = *rotaryDim;
  c.finalLogitSoftcap = *softcap;
  if (c.rotaryDim % 2 != 0 || c.rotaryDim > c.keyLength)
    return emitError(fileLoc) << key("rope.dimension_count") << " (" << c.rotaryDim
                              << ") must be even and at most the head size (" << c.keyLength
                              << ")";
  if (*theta <= 0)
    return emitError(fileLoc) << key("rope.freq_base") << " must be positive, got " << *theta;

  int64_t window = 0;
  if (arch.slidingWindowPeriod && reader.find(key("attention.sliding_window"))) {
    FailureOr<int64_t> slidingWindow = count("attention.sliding_window");
    if (failed(slidingWindow))
      return failure();
    window = *slidingWindow;
  }
  if (const kiln::gguf::MetadataValue *experts = reader.find(key("expert_count"));
      experts && experts->isInteger() && experts->integer != 0)
    return emitError(fileLoc) << "mixture-of-experts models (" << key("expert_count")
                              << " = " << experts->integer << ") are not supported";

  FailureOr<int64_t> vocab = vocabulary(c.embedding);
  if (failed(vocab))
    return failure();
  c.vocab = *vocab;

  if (failed(kiln::decoder::checkBlockCount(
          fileLoc, "gguf: metadata key '" + key("block_count") + "'", *blocks, weights,
          [](int64_t i) { return "blk." + std::to_string(i) + ".attn_norm.weight"; })))
    return failure();
  for (int64_t i = 0; i < *blocks; ++i) {
    bool sliding = window && (i + 1) % arch.slidingWindowPeriod != 0;
    using kiln::decoder::LayerConfig;
    c.layers.push_back(sliding ? LayerConfig{window, arch.slidingWindowRopeTheta, 1.0}
                               : LayerConfig{0, *theta, *freqScale});
  }
  return c;
}

FailureOr<int64_t> GgufConfigReader::vocabulary(int64_t embedding) {
  if (reader.tensors().empty())
    return emitError(fileLoc) << "the file holds no tensors (a vocabulary-only GGUF?)";
  const TensorInfo *embd = reader.findTensor("token_embd.weight");
  Location embdLoc = NameLoc::get(StringAttr::get(fileLoc.getContext(), "token_embd.weight"),
                                  fileLoc);
  if (!embd)
    return emitError(embdLoc) << "missing tensor 'token_embd.weight'";
  if (embd->dims.size() != 2 || embd->dims[1] > uint64_t(kMaxSize))
    return emitError(embdLoc) << "tensor 'token_embd.weight' must be a [vocab, " << embedding
                              << "] matrix (ggml ne [" << embedding << ", vocab])";
  return int64_t(embd->dims[1]);
}

FailureOr<kiln::recurrent::MambaConfig> GgufConfigReader::readMamba() {
  kiln::recurrent::MambaConfig c;
  // The keys llama.cpp's loader requires for LLM_ARCH_MAMBA (and MAMBA2).
  FailureOr<int64_t> contextLength = count("context_length"),
                     embedding = count("embedding_length"), blocks = count("block_count"),
                     convKernel = count("ssm.conv_kernel"), inner = count("ssm.inner_size"),
                     stateSize = count("ssm.state_size"), rank = count("ssm.time_step_rank");
  FailureOr<double> epsilon = real("attention.layer_norm_rms_epsilon");
  if (failed(contextLength) || failed(embedding) || failed(blocks) || failed(convKernel) ||
      failed(inner) || failed(stateSize) || failed(rank) || failed(epsilon))
    return failure();
  if (*convKernel < 2)
    return emitError(fileLoc) << key("ssm.conv_kernel") << " must be at least 2, got "
                              << *convKernel;
  // FalconMamba's RMS norms of the step, B and C are not part of this graph.
  if (const kiln::gguf::MetadataValue *rms = reader.find(key("ssm.dt_b_c_rms"));
      rms && rms->integer != 0) // a bool or integer; other types leave it 0
    return emitError(fileLoc) << key("ssm.dt_b_c_rms")
                              << " is set (FalconMamba's B/C/dt norms), which kiln does not "
                                 "support";
  if (StringRef(arch.name) == "mamba2") {
    // llama.cpp's Mamba-2: the time-step rank is the head count; B and C come in groups.
    c.version = 2;
    FailureOr<int64_t> groups = count("ssm.group_count");
    if (failed(groups))
      return failure();
    if (*groups != 1)
      return emitError(fileLoc) << key("ssm.group_count") << " is " << *groups
                                << "; kiln supports Mamba-2 with one group of B and C";
    if (*inner % *rank != 0)
      return emitError(fileLoc) << key("ssm.inner_size") << " (" << *inner
                                << ") is not a multiple of the head count "
                                << key("ssm.time_step_rank") << " (" << *rank << ")";
  }
  c.contextLength = *contextLength;
  c.contextLengthKey = key("context_length");
  c.embedding = *embedding;
  c.blocks = *blocks;
  c.convKernel = *convKernel;
  c.inner = *inner;
  c.stateSize = *stateSize;
  c.timeStepRank = *rank;
  c.normEpsilon = *epsilon;
  FailureOr<int64_t> vocab = vocabulary(c.embedding);
  if (failed(vocab) ||
      failed(kiln::decoder::checkBlockCount(
          fileLoc, "gguf: metadata key '" + key("block_count") + "'", *blocks, weights,
          [](int64_t i) { return "blk." + std::to_string(i) + ".attn_norm.weight"; })))
    return failure();
  c.vocab = *vocab;
  return c;
}

FailureOr<kiln::recurrent::Rwkv6Config> GgufConfigReader::readRwkv6() {
  kiln::recurrent::Rwkv6Config c;
  // The keys llama.cpp's loader reads for LLM_ARCH_RWKV6 and LLM_ARCH_RWKV7.
  FailureOr<int64_t> contextLength = count("context_length"),
                     embedding = count("embedding_length"), blocks = count("block_count"),
                     feedForward = count("feed_forward_length"), headSize = count("wkv.head_size");
  FailureOr<double> epsilon = real("attention.layer_norm_epsilon");
  if (failed(contextLength) || failed(embedding) || failed(blocks) || failed(feedForward) ||
      failed(headSize) || failed(epsilon))
    return failure();
  if (StringRef(arch.name) == "rwkv7") {
    c.version = 7;
    FailureOr<int64_t> decay = count("attention.decay_lora_rank"),
                       iclr = count("attention.iclr_lora_rank"),
                       valueMix = count("attention.value_residual_mix_lora_rank"),
                       gate = count("attention.gate_lora_rank");
    if (failed(decay) || failed(iclr) || failed(valueMix) || failed(gate))
      return failure();
    c.decayRank = *decay;
    c.iclrRank = *iclr;
    c.valueMixRank = *valueMix;
    c.gateRank = *gate;
  } else {
    FailureOr<int64_t> mixExtra = count("time_mix_extra_dim"),
                       decayExtra = count("time_decay_extra_dim");
    if (failed(mixExtra) || failed(decayExtra))
      return failure();
    c.timeMixExtra = *mixExtra;
    c.timeDecayExtra = *decayExtra;
  }
  if (*embedding % *headSize != 0)
    return emitError(fileLoc) << key("embedding_length") << " (" << *embedding
                              << ") is not a multiple of " << key("wkv.head_size") << " ("
                              << *headSize << ")";
  // Optional, 0 = never.
  int64_t rescale = 0;
  if (const kiln::gguf::MetadataValue *value = reader.find(key("rescale_every_n_layers"))) {
    if (!value->isInteger() || value->integer > uint64_t(kMaxSize))
      return emitError(fileLoc) << key("rescale_every_n_layers")
                                << " must be an integer between 0 and " << kMaxSize;
    rescale = int64_t(value->integer);
  }
  if (const kiln::gguf::MetadataValue *shifts = reader.find(key("token_shift_count"));
      shifts && shifts->integer != 2)
    return emitError(fileLoc) << key("token_shift_count") << " must be 2, got "
                              << shifts->integer;
  if (const kiln::gguf::MetadataValue *kv = reader.find(key("attention.head_count_kv"));
      kv && kv->integer != 0 && int64_t(kv->integer) != *embedding / *headSize)
    return emitError(fileLoc) << key("attention.head_count_kv")
                              << " differs from the head count (grouped key/value heads, "
                                 "QRWKV), which kiln does not support";
  c.contextLength = *contextLength;
  c.contextLengthKey = key("context_length");
  c.embedding = *embedding;
  c.blocks = *blocks;
  c.feedForward = *feedForward;
  c.headSize = *headSize;
  c.rescaleEvery = rescale;
  c.normEpsilon = *epsilon;
  FailureOr<int64_t> vocab = vocabulary(c.embedding);
  if (failed(vocab) ||
      failed(kiln::decoder::checkBlockCount(
          fileLoc, "gguf: metadata key '" + key("block_count") + "'", *blocks, weights,
          [](int64_t i) { return "blk." + std::to_string(i) + ".attn_norm.weight"; })))
    return failure();
  c.vocab = *vocab;
  return c;
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

std::string supportedTensorTypes(MLIRContext *context) {
  std::string names;
  for (const kiln::gguf::GgmlTypeInfo &type : kiln::gguf::ggmlTypes())
    if (elementTypeOf(type, context))
      names += (names.empty() ? "" : ", ") + std::string(type.name);
  return names;
}

/// The tensors of a GGUF file, as kiln.weight ops on its bytes.
class GgufWeights : public kiln::decoder::WeightSource {
public:
  GgufWeights(const GgufReader &reader, std::string source, Location fileLoc)
      : reader(reader), source(std::move(source)), fileLoc(fileLoc) {}

  FailureOr<Value> load(OpBuilder &builder, StringRef name, ArrayRef<int64_t> shape) override;
  bool contains(StringRef name) const override {
    return reader.findTensor(std::string_view(name.data(), name.size())) != nullptr;
  }
  LogicalResult checkAllUsed() override;

private:
  Location tensorLoc(StringRef name) {
    return NameLoc::get(StringAttr::get(fileLoc.getContext(), name), fileLoc);
  }

  const GgufReader &reader;
  std::string source; // the absolute path the kiln.weight ops name
  Location fileLoc;
  llvm::StringSet<> used;
};

FailureOr<Value> GgufWeights::load(OpBuilder &builder, StringRef name,
                                   ArrayRef<int64_t> shape) {
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
  MLIRContext *context = builder.getContext();
  Type element = elementTypeOf(*info->type, context);
  if (!element)
    return emitError(loc) << "tensor '" << name << "' has ggml type " << info->type->name
                          << ", which kiln does not support (supported: "
                          << supportedTensorTypes(context) << ")";
  used.insert(name);
  return kiln::WeightOp::create(builder, loc, RankedTensorType::get(shape, element), name,
                                source, info->fileOffset, DenseI64ArrayAttr(), StringAttr(),
                                DenseF32ArrayAttr())
      .getResult();
}

LogicalResult GgufWeights::checkAllUsed() {
  bool unused = false;
  for (const TensorInfo &info : reader.tensors()) {
    StringRef name(info.name.data(), info.name.size());
    // llama.cpp skips the rotary tables some old conversions stored; kiln.rope
    // computes them.
    if (used.contains(name) || name.ends_with(".attn_rot_embd"))
      continue;
    emitError(tensorLoc(name)) << "tensor '" << name
                               << "' is not part of the graph kiln builds for this "
                                  "architecture (biases, rope frequency factors and experts "
                                  "are not supported)";
    unused = true;
  }
  return failure(unused);
}

} // namespace

OwningOpRef<ModuleOp> kiln::importGguf(llvm::StringRef path, MLIRContext &context,
                                       int64_t sequenceLength, bool kvCache,
                                       int64_t contextLength, bool fullWindowCaches) {
  Location fileLoc = FileLineColLoc::get(&context, path, 0, 0);
  kiln::Result<std::unique_ptr<GgufReader>> reader = GgufReader::open(path.str());
  if (!reader) {
    emitError(fileLoc) << reader.error();
    return nullptr;
  }
  kiln::Result<std::string_view> name = (*reader)->getString("general.architecture");
  if (!name) {
    emitError(fileLoc) << name.error();
    return nullptr;
  }
  const Architecture *arch = llvm::find_if(
      kArchitectures, [&](const Architecture &a) { return *name == a.name; });
  if (arch == std::end(kArchitectures)) {
    emitError(fileLoc) << "unsupported architecture '" << *name
                       << "' (general.architecture); kiln imports: " << supportedArchitectures();
    return nullptr;
  }
  // kiln.weight sources are absolute so the artifact writer finds them from anywhere.
  SmallString<256> absolute(path);
  if (std::error_code error = llvm::sys::fs::make_absolute(absolute)) {
    emitError(fileLoc) << "cannot resolve '" << path << "': " << error.message();
    return nullptr;
  }
  GgufWeights weights(**reader, std::string(absolute), fileLoc);
  decoder::DecoderOptions options{sequenceLength, kvCache, contextLength, fullWindowCaches};
  if (arch->graph == Graph::Mamba) {
    FailureOr<recurrent::MambaConfig> config =
        GgufConfigReader(**reader, *arch, weights, fileLoc).readMamba();
    if (failed(config))
      return nullptr;
    return recurrent::buildMamba(context, fileLoc, *config, weights, options);
  }
  if (arch->graph == Graph::Rwkv6) {
    FailureOr<recurrent::Rwkv6Config> config =
        GgufConfigReader(**reader, *arch, weights, fileLoc).readRwkv6();
    if (failed(config))
      return nullptr;
    return recurrent::buildRwkv6(context, fileLoc, *config, weights, options);
  }
  FailureOr<DecoderConfig> config = GgufConfigReader(**reader, *arch, weights, fileLoc).read();
  if (failed(config))
    return nullptr;
  return decoder::buildDecoder(context, fileLoc, *config, weights, options);
}
