// Sampler: picks the next token from a row of logits — greedy, or temperature with
// top-k, top-p and min-p filtering and a repetition penalty — deterministically for a
// given seed (the same seed, logits and history give the same token on every machine).
#ifndef KILN_RUNTIME_LLM_SAMPLER_H
#define KILN_RUNTIME_LLM_SAMPLER_H

#include "Tokenizer.h"

#include <cstdint>
#include <vector>

namespace kiln::llm {

struct SamplerOptions {
  /// Softmax temperature; 0 or below picks the most likely token (greedy).
  float temperature = 0.8f;
  /// Keep the k most likely tokens; 0 keeps all.
  int32_t topK = 40;
  /// Keep the most likely tokens whose probabilities sum to at least p; 1 keeps all.
  float topP = 0.95f;
  /// Drop tokens less likely than minP times the most likely one; 0 keeps all.
  float minP = 0.05f;
  /// Divide positive logits (multiply negative ones) of recently seen tokens; 1: off.
  /// Off by default, as in llama.cpp (since 2024): a penalty turns "the first humans
  /// to walk on the Moon were" + " the" (a prompt word) into " born".
  float repetitionPenalty = 1.0f;
  /// How many of the latest tokens the repetition penalty looks at.
  int32_t repetitionWindow = 64;
  uint64_t seed = 0;
};

class Sampler {
public:
  explicit Sampler(SamplerOptions options);

  /// The next token given `logits` (one per vocabulary entry) and the tokens so far.
  TokenId sample(const float *logits, size_t vocabularySize, const std::vector<TokenId> &history);

private:
  /// A uniform double in [0, 1) from the seeded stream (SplitMix64: specified here, not
  /// by a standard library, so the stream is the same everywhere).
  double uniform();

  SamplerOptions options;
  uint64_t state;
};

} // namespace kiln::llm

#endif // KILN_RUNTIME_LLM_SAMPLER_H
