// The Mamba language models' graph (llama.cpp's llm_build_mamba, v1 and v2): per block
// an RMSNorm, the input projection, a causal convolution over a rolling window, the
// selective scan, the gate and the output projection. The recurrent state (each
// block's convolution window and scan state) is `kiln.state`, carried from @prefill to
// @decode as a transformer's KV cache is.
#ifndef KILN_FRONTENDS_RECURRENT_MAMBAGRAPH_H
#define KILN_FRONTENDS_RECURRENT_MAMBAGRAPH_H

#include "frontends/recurrent/RecurrentGraph.h"

#include <cstdint>
#include <string>

namespace kiln::recurrent {

/// One Mamba model's sizes, as llama.cpp's `mamba.*` metadata gives them. Weights are
/// named as in GGUF files ("blk.<i>.ssm_in.weight", "blk.<i>.ssm_a", ...).
struct MambaConfig : RecurrentSizes {
  /// 1: Mamba (`mamba`); 2: Mamba-2 (`mamba2`: scalar decay per head, B and C through the
  /// convolution, a gated RMSNorm before the output projection).
  int version = 1;
  int64_t inner = 0;        ///< d_inner (ssm.inner_size)
  int64_t stateSize = 0;    ///< d_state (ssm.state_size)
  int64_t convKernel = 0;   ///< d_conv (ssm.conv_kernel), at least 2
  int64_t timeStepRank = 0; ///< dt_rank (ssm.time_step_rank); Mamba-2: the head count
  double normEpsilon = 1e-5;
};

/// Builds the module: without `options.kvCache` a full-sequence
/// `main(tokens: i32[N], positions: i64[N]) -> logits: f32[N, vocab]` from a zero
/// state; with it `prefill(tokens: i32[N], positions: i64[N], logits_row: i64[1],
/// states...) -> (logits: f32[1, vocab], states...)` and `decode` (N = 1, no
/// logits_row, all logits), the states per block `conv_state.<i>`: f32[d_conv - 1,
/// d_inner] and `ssm_state.<i>`: f32[d_inner, d_state], tagged `kiln.state` on argument
/// and result. Prefill advances the state by the rows up to logits_row only, so a
/// padded last batch leaves the padding out. Positions are taken for the decoders'
/// calling convention and unused. Returns null after reporting through the context.
mlir::OwningOpRef<mlir::ModuleOp> buildMamba(mlir::MLIRContext &context, mlir::Location fileLoc,
                                             const MambaConfig &config,
                                             decoder::WeightSource &weights,
                                             const decoder::DecoderOptions &options);

} // namespace kiln::recurrent

#endif // KILN_FRONTENDS_RECURRENT_MAMBAGRAPH_H
