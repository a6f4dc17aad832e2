// The RWKV-6 ("Finch") language model's graph (llama.cpp's llm_build_rwkv6): per block a
// LayerNorm, the time mix (token shift, data-dependent lerps through a low-rank
// projection, receptance/key/value/gate, data-dependent decay, the WKV recurrence, a
// per-head group norm, the gate, the output projection) and the channel mix (token
// shift, squared ReLU key, sigmoid receptance). The state per block (the two token
// shifts and the WKV state) is `kiln.state`, carried from @prefill to @decode.
#ifndef KILN_FRONTENDS_RECURRENT_RWKV6GRAPH_H
#define KILN_FRONTENDS_RECURRENT_RWKV6GRAPH_H

#include "frontends/recurrent/RecurrentGraph.h"

namespace kiln::recurrent {

/// One RWKV-6 model's sizes, as llama.cpp's `rwkv6.*` metadata gives them. Weights are
/// named as in GGUF files ("blk.<i>.time_mix_key.weight", ...).
struct Rwkv6Config : RecurrentSizes {
  int64_t headSize = 0;          ///< wkv.head_size
  int64_t feedForward = 0;       ///< feed_forward_length (the channel mix's width)
  int64_t timeMixExtra = 0;      ///< time_mix_extra_dim (the lerps' low rank)
  int64_t timeDecayExtra = 0;    ///< time_decay_extra_dim (the decay's low rank)
  int64_t rescaleEvery = 0;      ///< rescale_every_n_layers: halve the stream after each n
  double normEpsilon = 1e-5;     ///< attention.layer_norm_epsilon
};

/// Builds the module as buildMamba does; the states per block are `att_shift.<i>` and
/// `ffn_shift.<i>`: f32[1, embedding] (the previous token's normed input to the time
/// and channel mix) and `wkv_state.<i>`: f32[heads, head size, head size].
mlir::OwningOpRef<mlir::ModuleOp> buildRwkv6(mlir::MLIRContext &context, mlir::Location fileLoc,
                                             const Rwkv6Config &config,
                                             decoder::WeightSource &weights,
                                             const decoder::DecoderOptions &options);

} // namespace kiln::recurrent

#endif // KILN_FRONTENDS_RECURRENT_RWKV6GRAPH_H
