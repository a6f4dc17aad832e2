// Token sampling: repetition penalty, then greedy or temperature softmax filtered by
// top-k, top-p and min-p, in the order llama.cpp's default sampler chain applies them.
#include "Sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace kiln::llm {

Sampler::Sampler(SamplerOptions options) : options(options), state(options.seed) {}

double Sampler::uniform() {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

TokenId Sampler::sample(const float *logits, size_t vocabularySize,
                        const std::vector<TokenId> &history) {
  std::vector<float> adjusted(logits, logits + vocabularySize);
  // A NaN logit (a broken model) is never chosen, and keeps the ordering below strict.
  for (float &logit : adjusted)
    if (std::isnan(logit))
      logit = -INFINITY;
  if (options.repetitionPenalty != 1.0f) {
    size_t window = std::min(history.size(), static_cast<size_t>(std::max(0, options.repetitionWindow)));
    std::vector<bool> seen(vocabularySize, false);
    for (size_t i = history.size() - window; i < history.size(); ++i)
      if (history[i] >= 0 && static_cast<size_t>(history[i]) < vocabularySize)
        seen[history[i]] = true;
    for (size_t id = 0; id < vocabularySize; ++id)
      if (seen[id])
        adjusted[id] = adjusted[id] > 0 ? adjusted[id] / options.repetitionPenalty
                                        : adjusted[id] * options.repetitionPenalty;
  }

  // Candidates by descending logit; ties keep the lower id first, so greedy decoding
  // and every filter below are deterministic. The order is total, so sorting only the
  // candidates that can be kept (one when greedy, top-k) gives the same first elements
  // as a full sort, without sorting a 262,144-token vocabulary for every token.
  auto before = [&](TokenId a, TokenId b) {
    return adjusted[a] != adjusted[b] ? adjusted[a] > adjusted[b] : a < b;
  };
  std::vector<TokenId> order(vocabularySize);
  std::iota(order.begin(), order.end(), 0);
  if (options.temperature <= 0.0f || vocabularySize == 1)
    return *std::min_element(order.begin(), order.end(), before);

  size_t keep = vocabularySize;
  if (options.topK > 0)
    keep = std::min(keep, static_cast<size_t>(options.topK));
  std::partial_sort(order.begin(), order.begin() + keep, order.end(), before);
  std::vector<double> probabilities(keep);
  double top = adjusted[order[0]] / options.temperature, total = 0;
  for (size_t i = 0; i < keep; ++i) {
    probabilities[i] = std::exp(adjusted[order[i]] / options.temperature - top);
    total += probabilities[i];
  }
  for (double &p : probabilities)
    p /= total;

  if (options.topP < 1.0f) {
    double cumulative = 0;
    size_t nucleus = 0;
    while (nucleus < keep && cumulative < options.topP)
      cumulative += probabilities[nucleus++];
    keep = std::max<size_t>(1, nucleus);
  }
  if (options.minP > 0.0f) {
    size_t above = 1;
    while (above < keep && probabilities[above] >= options.minP * probabilities[0])
      ++above;
    keep = above;
  }

  double mass = std::accumulate(probabilities.begin(), probabilities.begin() + keep, 0.0);
  double target = uniform() * mass;
  for (size_t i = 0; i < keep; ++i) {
    target -= probabilities[i];
    if (target < 0)
      return order[i];
  }
  return order[keep - 1];
}

} // namespace kiln::llm
