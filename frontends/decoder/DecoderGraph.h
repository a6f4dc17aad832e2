// The decoder-only transformer graph every language-model frontend shares: a
// description of the model (DecoderConfig: sizes, per-layer attention window and RoPE,
// the variant's norms and feed-forward) and a source of its weights by name build the
// forward pass from linalg and kiln ops. The GGUF and safetensors frontends differ only
// in how they fill the config and where the weights' bytes live.
#ifndef KILN_FRONTENDS_DECODER_DECODERGRAPH_H
#define KILN_FRONTENDS_DECODER_DECODERGRAPH_H

#include "dialects/Kiln/KilnDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::decoder {

/// The gated feed-forward: down(act(gate(x)) * up(x)).
enum class FeedForward {
  SwiGlu,    ///< act = SiLU (llama)
  GeGluTanh, ///< act = GELU, tanh approximation (gemma)
};

/// What differs from one block to the next.
struct LayerConfig {
  /// Tokens a query sees, itself included (sliding-window attention); 0 = all earlier.
  int64_t slidingWindow = 0;
  double ropeTheta = 10000;
  double ropeFreqScale = 1;
};

/// One model's shape and variant. Weights are named as in GGUF files
/// ("token_embd.weight", "blk.<i>.attn_q.weight", ...), whatever the source format.
struct DecoderConfig {
  std::string architecture; ///< for messages ("llama", "gemma3")
  int64_t contextLength = 0;
  /// Where contextLength came from, for messages ("llama.context_length").
  std::string contextLengthKey;
  int64_t embedding = 0;
  int64_t feedForward = 0;
  int64_t heads = 0;
  int64_t kvHeads = 0;
  int64_t keyLength = 0;   ///< per-head query/key size
  int64_t valueLength = 0; ///< per-head value size
  int64_t rotaryDim = 0;
  int64_t vocab = 0;
  double normEpsilon = 1e-6;
  RopeMode ropeMode = RopeMode::interleaved;
  FeedForward feedForwardKind = FeedForward::SwiGlu;
  /// Multiplies the token embeddings (gemma: sqrt(embedding)); 1 = none.
  double embeddingScale = 1;
  /// Scale of Q·Kᵀ; 0 = 1/sqrt(keyLength).
  double attentionScale = 0;
  /// logits = cap * tanh(logits / cap) when non-zero.
  double finalLogitSoftcap = 0;
  /// RMS-normalize each query and key head (weights blk.<i>.attn_q_norm / attn_k_norm).
  bool queryKeyNorm = false;
  /// RMS-normalize the attention and feed-forward outputs before their residual adds
  /// (blk.<i>.post_attention_norm / post_ffw_norm).
  bool postNorms = false;
  /// One per block.
  std::vector<LayerConfig> layers;
};

/// The model's tensors, by GGUF name.
class WeightSource {
public:
  virtual ~WeightSource();
  /// Creates the kiln.weight of `name` at `builder`'s insertion point, after checking
  /// that its row-major shape is `shape`; reports (naming the tensor) and fails when it
  /// is missing, has another shape or an unsupported type.
  virtual mlir::FailureOr<mlir::Value> load(mlir::OpBuilder &builder, llvm::StringRef name,
                                            llvm::ArrayRef<int64_t> shape) = 0;
  virtual bool contains(llvm::StringRef name) const = 0;
  /// Reports every tensor of the model that no load() asked for (a bias or an expert
  /// the graph ignored would silently change the results) and fails if there is one.
  virtual mlir::LogicalResult checkAllUsed() = 0;
};

/// Checks a block count read from a model's metadata (`key`, as named in messages)
/// against the blocks whose tensors exist, before anything is sized by it: block i
/// exists when `blockTensor(i)` (its first tensor) does. Reports and fails when they
/// differ. Costs one lookup per real block, however large `count` claims to be.
mlir::LogicalResult checkBlockCount(mlir::Location loc, llvm::StringRef key, int64_t count,
                                    const WeightSource &weights,
                                    llvm::function_ref<std::string(int64_t)> blockTensor);

/// A language model's entry point `name`: (tokens [sequence] i32, positions [sequence]
/// i64, with `lastRowOnly` logits_row [1] i64, then the states) -> (logits [1 or
/// sequence, vocab] f32, then the states), each state `stateTypes[i]` named
/// `stateNames[i]` (kiln.state on its argument and result), the other values by
/// kiln.name. The builder's insertion point is the end of its entry block; the states
/// are its last `stateTypes.size()` arguments. Shared by decoders and recurrent models.
mlir::func::FuncOp buildEntryPoint(mlir::OpBuilder &builder, mlir::Location loc,
                                   llvm::StringRef name, int64_t sequence, int64_t vocab,
                                   bool lastRowOnly, llvm::ArrayRef<mlir::Type> stateTypes,
                                   llvm::ArrayRef<std::string> stateNames);

struct DecoderOptions {
  /// Tokens per forward pass (prefill batch with a KV cache); 0 = min(limit, 64).
  int64_t sequenceLength = 0;
  bool kvCache = false;
  /// Cache rows with kvCache; 0 = min(the model's context, 512).
  int64_t contextLength = 0;
  /// With kvCache, sliding-window layers keep contextLength rows too instead of a ring
  /// of window + sequenceLength - 1 (the same results; for comparing the two).
  bool fullWindowCaches = false;
};

/// Builds the module (see importGguf in frontends/gguf/GgufImporter.h for the entry
/// points' signatures). Returns null after reporting through the context's diagnostics.
mlir::OwningOpRef<mlir::ModuleOp> buildDecoder(mlir::MLIRContext &context,
                                               mlir::Location fileLoc,
                                               const DecoderConfig &config,
                                               WeightSource &weights,
                                               const DecoderOptions &options);

} // namespace kiln::decoder

#endif // KILN_FRONTENDS_DECODER_DECODERGRAPH_H
