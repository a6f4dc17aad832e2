// The sampler: greedy ties, seeded determinism, each filter, the repetition penalty,
// and that temperature sampling follows the softmax distribution.
#include "Sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

using kiln::llm::Sampler;
using kiln::llm::SamplerOptions;
using kiln::llm::TokenId;

namespace {

SamplerOptions unfiltered(float temperature, uint64_t seed = 1) {
  SamplerOptions o;
  o.temperature = temperature;
  o.topK = 0;
  o.topP = 1.0f;
  o.minP = 0.0f;
  o.repetitionPenalty = 1.0f;
  o.seed = seed;
  return o;
}

std::vector<TokenId> draw(SamplerOptions options, const std::vector<float> &logits, int n) {
  Sampler sampler(options);
  std::vector<TokenId> out;
  for (int i = 0; i < n; ++i)
    out.push_back(sampler.sample(logits.data(), logits.size(), {}));
  return out;
}

TEST(Sampler, greedy_picks_the_largest_logit_and_the_lowest_id_on_ties) {
  Sampler sampler(unfiltered(0.0f));
  std::vector<float> logits{0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(sampler.sample(logits.data(), logits.size(), {}), 1);
}

TEST(Sampler, same_seed_gives_the_same_tokens) {
  std::vector<float> logits{0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
  EXPECT_EQ(draw(unfiltered(1.0f, 42), logits, 64), draw(unfiltered(1.0f, 42), logits, 64));
  EXPECT_NE(draw(unfiltered(1.0f, 42), logits, 64), draw(unfiltered(1.0f, 43), logits, 64));
}

TEST(Sampler, top_k_of_one_is_greedy_at_any_temperature) {
  SamplerOptions o = unfiltered(5.0f);
  o.topK = 1;
  for (TokenId t : draw(o, {0.1f, 3.0f, 2.9f}, 50))
    EXPECT_EQ(t, 1);
}

TEST(Sampler, top_p_keeps_only_the_nucleus) {
  // Probabilities 0.7, 0.2, 0.1: p = 0.6 keeps only the first token.
  SamplerOptions o = unfiltered(1.0f);
  o.topP = 0.6f;
  for (TokenId t : draw(o, {std::log(0.2f), std::log(0.7f), std::log(0.1f)}, 50))
    EXPECT_EQ(t, 1);
}

TEST(Sampler, min_p_drops_tokens_far_below_the_best) {
  // 0.1 < 0.2 * 0.7: token 2 can never be drawn; tokens 0 and 1 both appear.
  SamplerOptions o = unfiltered(1.0f);
  o.minP = 0.2f;
  std::map<TokenId, int> seen;
  for (TokenId t : draw(o, {std::log(0.2f), std::log(0.7f), std::log(0.1f)}, 400))
    ++seen[t];
  EXPECT_EQ(seen.count(2), 0u);
  EXPECT_GT(seen[0], 0);
  EXPECT_GT(seen[1], 0);
}

TEST(Sampler, repetition_penalty_demotes_recent_tokens) {
  SamplerOptions o = unfiltered(0.0f);
  o.repetitionPenalty = 1.2f;
  Sampler sampler(o);
  std::vector<float> logits{2.0f, 1.9f};
  EXPECT_EQ(sampler.sample(logits.data(), logits.size(), {0}), 1);
  EXPECT_EQ(sampler.sample(logits.data(), logits.size(), {}), 0);
}

TEST(Sampler, temperature_sampling_follows_the_softmax) {
  // 20000 seeded draws from probabilities 0.2/0.3/0.5. The seed fixes the outcome, so
  // this cannot flake; 0.015 is ~5 standard deviations of a frequency at n = 20000.
  std::vector<float> logits{std::log(0.2f), std::log(0.3f), std::log(0.5f)};
  std::map<TokenId, int> counts;
  for (TokenId t : draw(unfiltered(1.0f, 7), logits, 20000))
    ++counts[t];
  EXPECT_NEAR(counts[0] / 20000.0, 0.2, 0.015);
  EXPECT_NEAR(counts[1] / 20000.0, 0.3, 0.015);
  EXPECT_NEAR(counts[2] / 20000.0, 0.5, 0.015);
}

} // namespace
