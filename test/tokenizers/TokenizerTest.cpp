// Tokenizer unit tests over small vocabularies written by the test: each model's rules
// (score-driven merges with byte fallback, merge ranks, greedy WordPiece with [UNK])
// and every vocabulary error.
#include "GgufTestWriter.h"
#include "Tokenizer.h"

#include <gtest/gtest.h>

using namespace kiln;
using namespace kiln::llm;
using namespace kiln::gguf::test;

namespace {

constexpr uint32_t kU32 = 4, kF32 = 6, kBool = 7, kString = 8, kArray = 9, kI32 = 5;

struct VocabFile {
  std::vector<uint8_t> bytes;
  std::unique_ptr<gguf::GgufReader> reader;
};

Result<std::unique_ptr<Tokenizer>> tokenizerFrom(VocabFile &file, const std::vector<MetadataSpec> &metadata) {
  file.bytes = writeGguf(metadata);
  auto reader = gguf::GgufReader::fromMemory(file.bytes.data(), file.bytes.size());
  if (!reader)
    return reader.takeError();
  file.reader = std::move(*reader);
  return Tokenizer::fromGguf(*file.reader);
}

GgufBytes floats(const std::vector<float> &values) {
  GgufBytes out;
  for (float v : values)
    out.put(v);
  return out;
}

GgufBytes ints(const std::vector<int32_t> &values) {
  GgufBytes out;
  for (int32_t v : values)
    out.put(v);
  return out;
}

// A SentencePiece vocabulary: <unk>, <s>, </s>, byte tokens for 'x' and 0xC3, pieces.
std::vector<MetadataSpec> sentencePieceVocab() {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "<0x78>", "<0xC3>", "\xe2\x96\x81",
                                     "a", "b", "ab", "\xe2\x96\x81" "ab", "c", "bc"};
  std::vector<float> scores = {0, 0, 0, 0, 0, -1, -1, -1, -2, -3, -1, -0.5f};
  std::vector<int32_t> types = {2, 3, 3, 6, 6, 1, 1, 1, 1, 1, 1, 1};
  return {{"tokenizer.ggml.model", kString, stringPayload("llama")},
          {"tokenizer.ggml.tokens", kArray, stringArrayPayload(tokens)},
          {"tokenizer.ggml.scores", kArray, arrayPayload(kF32, scores.size(), floats(scores))},
          {"tokenizer.ggml.token_type", kArray, arrayPayload(kI32, types.size(), ints(types))},
          {"tokenizer.ggml.bos_token_id", kU32, scalarPayload<uint32_t>(1)},
          {"tokenizer.ggml.eos_token_id", kU32, scalarPayload<uint32_t>(2)},
          {"tokenizer.ggml.unknown_token_id", kU32, scalarPayload<uint32_t>(0)}};
}

TEST(SentencePiece, merges_by_score_and_falls_back_to_bytes) {
  VocabFile file;
  auto tokenizer = tokenizerFrom(file, sentencePieceVocab());
  ASSERT_TRUE(tokenizer) << tokenizer.error();
  // "▁abc": "bc" (score -0.5) merges before "ab" (-2), so "▁ab" never forms.
  EXPECT_EQ((*tokenizer)->encode("abc"), (std::vector<TokenId>{5, 6, 11}));
  EXPECT_EQ((*tokenizer)->encode("ab"), (std::vector<TokenId>{9}));
  // 'x' has a byte token, 'y' falls back to <unk> (no byte token), "é" to <0xC3> + <unk>.
  EXPECT_EQ((*tokenizer)->encode("x"), (std::vector<TokenId>{5, 3}));
  EXPECT_EQ((*tokenizer)->encode("y"), (std::vector<TokenId>{5, 0}));
  EXPECT_EQ((*tokenizer)->encode("\xc3\xa9"), (std::vector<TokenId>{5, 4, 0}));
  EXPECT_EQ((*tokenizer)->encode("ab", true), (std::vector<TokenId>{1, 9}));
  EXPECT_TRUE((*tokenizer)->encode("").empty());
  EXPECT_EQ(*(*tokenizer)->decode({1, 9, 5, 3, 2}), "ab x");
  EXPECT_EQ(std::string((*tokenizer)->modelName()), "llama");
}

TEST(SentencePiece, honours_add_space_prefix) {
  std::vector<MetadataSpec> metadata = sentencePieceVocab();
  metadata.push_back({"tokenizer.ggml.add_space_prefix", kBool, scalarPayload<uint8_t>(0)});
  VocabFile file;
  auto tokenizer = tokenizerFrom(file, metadata);
  ASSERT_TRUE(tokenizer) << tokenizer.error();
  EXPECT_EQ((*tokenizer)->encode("ab"), (std::vector<TokenId>{8}));
}

TEST(ByteLevelBpe, merges_by_rank_within_gpt2_words) {
  // 'Ġ' (U+0120) stands for the space byte.
  std::vector<std::string> tokens = {"a", "b", "c", "\xc4\xa0", "ab", "bc", "\xc4\xa0" "a", "!", "<|endoftext|>"};
  std::vector<int32_t> types = {1, 1, 1, 1, 1, 1, 1, 1, 3};
  VocabFile file;
  auto tokenizer = tokenizerFrom(
      file, {{"tokenizer.ggml.model", kString, stringPayload("gpt2")},
             {"tokenizer.ggml.pre", kString, stringPayload("gpt-2")},
             {"tokenizer.ggml.tokens", kArray, stringArrayPayload(tokens)},
             {"tokenizer.ggml.token_type", kArray, arrayPayload(kI32, types.size(), ints(types))},
             {"tokenizer.ggml.merges", kArray, stringArrayPayload({"b c", "a b", "\xc4\xa0 a"})},
             {"tokenizer.ggml.eos_token_id", kU32, scalarPayload<uint32_t>(8)}});
  ASSERT_TRUE(tokenizer) << tokenizer.error();
  // "abc": "b c" has the lower rank. " ab!" splits into "Ġab" (where "a b" outranks
  // "Ġ a") and "!"; " ac" merges "Ġ a".
  EXPECT_EQ((*tokenizer)->encode("abc"), (std::vector<TokenId>{0, 5}));
  EXPECT_EQ((*tokenizer)->encode(" ab!"), (std::vector<TokenId>{3, 4, 7}));
  EXPECT_EQ((*tokenizer)->encode(" ac"), (std::vector<TokenId>{6, 2}));
  // A byte with no token of its own is dropped (no unknown token).
  EXPECT_EQ((*tokenizer)->encode("a\x01"), (std::vector<TokenId>{0}));
  EXPECT_EQ(*(*tokenizer)->decode({6, 1, 7, 8}), " ab!");
}

TEST(ByteLevelBpe, rejects_unsupported_pre_tokenizers_and_bad_merges) {
  std::vector<MetadataSpec> base = {{"tokenizer.ggml.model", kString, stringPayload("gpt2")},
                                    {"tokenizer.ggml.tokens", kArray, stringArrayPayload({"a"})}};
  VocabFile file;
  auto noMerges = tokenizerFrom(file, base);
  ASSERT_FALSE(noMerges);
  EXPECT_NE(noMerges.error().find("tokenizer.ggml.merges"), std::string::npos);
  auto badMerge = base;
  badMerge.push_back({"tokenizer.ggml.merges", kArray, stringArrayPayload({"ab"})});
  auto bad = tokenizerFrom(file, badMerge);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("merges element 0 'ab'"), std::string::npos);
  auto llama3 = base;
  llama3.push_back({"tokenizer.ggml.pre", kString, stringPayload("llama3")});
  auto pre = tokenizerFrom(file, llama3);
  ASSERT_FALSE(pre);
  EXPECT_NE(pre.error().find("pre-tokenizer 'llama3'"), std::string::npos);
}

TEST(WordPiece, splits_normalizes_and_matches_longest_first) {
  std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "\xe2\x96\x81" "un",
                                     "\xe2\x96\x81" "unaff", "able", "aff", "\xe2\x96\x81" "!",
                                     "\xe2\x96\x81" "apfel", "\xe2\x96\x81\xe4\xb8\xad"};
  std::vector<int32_t> types = {3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  VocabFile file;
  auto tokenizer = tokenizerFrom(
      file, {{"tokenizer.ggml.model", kString, stringPayload("bert")},
             {"tokenizer.ggml.tokens", kArray, stringArrayPayload(tokens)},
             {"tokenizer.ggml.token_type", kArray, arrayPayload(kI32, types.size(), ints(types))},
             {"tokenizer.ggml.unknown_token_id", kU32, scalarPayload<uint32_t>(1)},
             {"tokenizer.ggml.cls_token_id", kU32, scalarPayload<uint32_t>(2)},
             {"tokenizer.ggml.seperator_token_id", kU32, scalarPayload<uint32_t>(3)}});
  ASSERT_TRUE(tokenizer) << tokenizer.error();
  EXPECT_EQ((*tokenizer)->encode("UnAffable!"), (std::vector<TokenId>{5, 6, 8}));
  EXPECT_EQ((*tokenizer)->encode(" \xc3\x84pfel\t\xe4\xb8\xad"), (std::vector<TokenId>{9, 10}));
  EXPECT_EQ((*tokenizer)->encode("unable xyz"), (std::vector<TokenId>{4, 6, 1}));
  EXPECT_EQ((*tokenizer)->encode("un", true), (std::vector<TokenId>{2, 4}));
  EXPECT_EQ(*(*tokenizer)->decode({2, 5, 6, 8, 1, 3}), "unaffable! [UNK]");
}

TEST(Tokenizer, rejects_bad_vocabularies_naming_the_key) {
  struct Case {
    std::vector<MetadataSpec> metadata;
    const char *message;
  };
  auto tokens = stringArrayPayload({"a", "b"});
  std::vector<Case> cases = {
      {{}, "'tokenizer.ggml.model' is missing"},
      {{{"tokenizer.ggml.model", kString, stringPayload("rwkv")}}, "'rwkv' is not supported"},
      {{{"tokenizer.ggml.model", kString, stringPayload("bert")}}, "'tokenizer.ggml.tokens' is missing"},
      {{{"tokenizer.ggml.model", kString, stringPayload("bert")},
        {"tokenizer.ggml.tokens", kArray, stringArrayPayload({})}},
       "has 0 tokens"},
      {{{"tokenizer.ggml.model", kString, stringPayload("llama")}, {"tokenizer.ggml.tokens", kArray, tokens}},
       "needs tokenizer.ggml.scores"},
      {{{"tokenizer.ggml.model", kString, stringPayload("llama")},
        {"tokenizer.ggml.tokens", kArray, tokens},
        {"tokenizer.ggml.scores", kArray, arrayPayload(kF32, 1, floats({0}))}},
       "tokenizer.ggml.scores has 1 entries for 2 tokens"},
      {{{"tokenizer.ggml.model", kString, stringPayload("bert")},
        {"tokenizer.ggml.tokens", kArray, tokens},
        {"tokenizer.ggml.token_type", kArray, arrayPayload(kI32, 2, ints({1, 9}))}},
       "token_type element 1 is 9"},
      {{{"tokenizer.ggml.model", kString, stringPayload("bert")},
        {"tokenizer.ggml.tokens", kArray, tokens},
        {"tokenizer.ggml.eos_token_id", kU32, scalarPayload<uint32_t>(2)}},
       "tokenizer.ggml.eos_token_id 2 is outside the vocabulary of 2 tokens"},
      {{{"tokenizer.ggml.model", kString, stringPayload("bert")},
        {"tokenizer.ggml.tokens", kArray, tokens},
        {"tokenizer.ggml.add_bos_token", kU32, scalarPayload<uint32_t>(1)}},
       "'tokenizer.ggml.add_bos_token' is uint32, expected bool"},
  };
  for (const Case &c : cases) {
    VocabFile file;
    auto tokenizer = tokenizerFrom(file, c.metadata);
    ASSERT_FALSE(tokenizer) << c.message;
    EXPECT_NE(tokenizer.error().find(c.message), std::string::npos) << tokenizer.error();
  }
}

TEST(Tokenizer, decode_rejects_ids_outside_the_vocabulary) {
  VocabFile file;
  auto tokenizer = tokenizerFrom(file, sentencePieceVocab());
  ASSERT_TRUE(tokenizer) << tokenizer.error();
  auto tooLarge = (*tokenizer)->decode({6, 12});
  ASSERT_FALSE(tooLarge);
  EXPECT_NE(tooLarge.error().find("token id 12 is outside the vocabulary of 12 tokens"), std::string::npos);
  EXPECT_FALSE((*tokenizer)->decode({-1}));
}

} // namespace
