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
  auto unknown = base;
  unknown.push_back({"tokenizer.ggml.merges", kArray, stringArrayPayload({"a a"})});
  unknown.push_back({"tokenizer.ggml.pre", kString, stringPayload("no-such-pre")});
  auto pre = tokenizerFrom(file, unknown);
  ASSERT_FALSE(pre);
  EXPECT_NE(pre.error().find("pre-tokenizer 'no-such-pre' (tokenizer.ggml.pre) is not supported; "
                             "supported: default, gpt-2"),
            std::string::npos);
  EXPECT_NE(pre.error().find("llama3"), std::string::npos);
}

// A byte-level vocabulary with the given pre-tokenizer and extra metadata: single
// bytes, "Ġ" (the space byte), what the merges make ("ab", "Ġa", "abc", "Ġ!", "Ġ1", "12",
// "123"), and "bc", which no merge makes.
std::vector<MetadataSpec> byteLevelVocab(const char *pre, std::vector<MetadataSpec> extra = {}) {
  std::vector<std::string> tokens = {"a", "b", "c", "\xc4\xa0", "ab", "\xc4\xa0" "a", "abc",
                                     "bc", "1", "2", "3", "12", "123", "!", ".", "x", "y",
                                     "z", "<s>", "w", "\xc4\xa0!", "\xc4\xa0" "1"};
  std::vector<std::string> merges = {"a b", "\xc4\xa0 a", "ab c", "\xc4\xa0 !", "\xc4\xa0 1",
                                     "1 2", "12 3"};
  std::vector<MetadataSpec> metadata = {
      {"tokenizer.ggml.model", kString, stringPayload("gpt2")},
      {"tokenizer.ggml.pre", kString, stringPayload(pre)},
      {"tokenizer.ggml.tokens", kArray, stringArrayPayload(tokens)},
      {"tokenizer.ggml.merges", kArray, stringArrayPayload(merges)}};
  metadata.insert(metadata.end(), extra.begin(), extra.end());
  return metadata;
}

TEST(ByteLevelBpe, splits_words_by_the_named_pre_tokenizer) {
  VocabFile file;
  // GPT-2 keeps digit runs whole; Qwen 2 splits every digit; Llama 3 takes three at a time.
  auto gpt2 = tokenizerFrom(file, byteLevelVocab("gpt-2"));
  ASSERT_TRUE(gpt2) << gpt2.error();
  EXPECT_EQ((*gpt2)->encode("1231"), (std::vector<TokenId>{12, 8}));
  auto qwen2 = tokenizerFrom(file, byteLevelVocab("qwen2"));
  ASSERT_TRUE(qwen2) << qwen2.error();
  EXPECT_EQ((*qwen2)->encode("1231"), (std::vector<TokenId>{8, 9, 10, 8}));
  // llama.cpp's "default" (also a file without tokenizer.ggml.pre) isolates punctuation
  // and then number runs around GPT-2's regex: " !" and " 123" are two words each, where
  // GPT-2 keeps one and merges the space in.
  auto byDefault = tokenizerFrom(file, byteLevelVocab("default"));
  ASSERT_TRUE(byDefault) << byDefault.error();
  EXPECT_EQ((*gpt2)->encode("a !"), (std::vector<TokenId>{0, 20}));
  EXPECT_EQ((*byDefault)->encode("a !"), (std::vector<TokenId>{0, 3, 13}));
  EXPECT_EQ((*gpt2)->encode("a 123"), (std::vector<TokenId>{0, 21, 9, 10}));
  EXPECT_EQ((*byDefault)->encode("a 123"), (std::vector<TokenId>{0, 3, 12}));
}

TEST(ByteLevelBpe, llama3_takes_whole_word_tokens_and_adds_bos_by_default) {
  VocabFile file;
  std::vector<MetadataSpec> bos = {{"tokenizer.ggml.bos_token_id", kU32, scalarPayload<uint32_t>(18)}};
  // "abc" merges to "abc" either way; "bc" is a token that no merge makes, so only
  // ignore_merges (llama3) gives it whole.
  auto llama3 = tokenizerFrom(file, byteLevelVocab("llama3", bos));
  ASSERT_TRUE(llama3) << llama3.error();
  EXPECT_EQ((*llama3)->encode("bc"), (std::vector<TokenId>{7}));
  EncodeOptions special;
  special.addSpecialTokens = true;
  EXPECT_EQ((*llama3)->encode("abc", special), (std::vector<TokenId>{18, 6}));
  auto dbrx = tokenizerFrom(file, byteLevelVocab("dbrx", bos));
  ASSERT_TRUE(dbrx) << dbrx.error();
  EXPECT_EQ((*dbrx)->encode("bc"), (std::vector<TokenId>{1, 2}));
  EXPECT_EQ((*dbrx)->encode("abc", special), (std::vector<TokenId>{6}));
  // The file's add_bos_token wins over the name.
  bos.push_back({"tokenizer.ggml.add_bos_token", kBool, scalarPayload<uint8_t>(0)});
  auto noBos = tokenizerFrom(file, byteLevelVocab("llama3", bos));
  ASSERT_TRUE(noBos) << noBos.error();
  EXPECT_EQ((*noBos)->encode("abc", special), (std::vector<TokenId>{6}));
}

TEST(ByteLevelBpe, bos_is_token_11_unless_the_file_or_the_name_says_otherwise) {
  VocabFile file;
  EncodeOptions special;
  special.addSpecialTokens = true;
  // As llama.cpp: byte-level BPE's BOS and EOS default to token 11 ("123" here).
  auto llama3 = tokenizerFrom(file, byteLevelVocab("llama3"));
  ASSERT_TRUE(llama3) << llama3.error();
  EXPECT_EQ((*llama3)->encode("x", special), (std::vector<TokenId>{11, 15}));
  EXPECT_EQ((*llama3)->vocabulary().eos, 11);
  // The GLM names have no BOS by default.
  std::vector<MetadataSpec> addBos = {{"tokenizer.ggml.add_bos_token", kBool, scalarPayload<uint8_t>(1)}};
  auto glm = tokenizerFrom(file, byteLevelVocab("chatglm-bpe", addBos));
  ASSERT_TRUE(glm) << glm.error();
  EXPECT_EQ((*glm)->encode("x", special), (std::vector<TokenId>{15}));
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
      {{{"tokenizer.ggml.model", kString, stringPayload("t5")}},
       "'t5' is not supported (supported: llama, gpt2, bert, rwkv)"},
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
