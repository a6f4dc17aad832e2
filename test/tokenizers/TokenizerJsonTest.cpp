// tokenizer.json unit tests: malformed and unsupported files give errors naming the JSON
// path (never a crash), and the pipeline's rules on tiny files written here — merge
// ranks, byte fallback, unknown fusing, ignore_merges, added tokens, post-processors,
// truncation, decoders. Also GGUF added-token splitting (user-defined vs control).
#include "GgufTestWriter.h"
#include "Tokenizer.h"
#include "Unicode.h"

#include <gtest/gtest.h>

#include <fstream>
#include <unistd.h>

using namespace kiln;
using namespace kiln::llm;
using namespace kiln::gguf::test;

namespace {

std::string errorOf(std::string_view json) {
  auto tokenizer = Tokenizer::fromHuggingFaceJson(json, "t.json");
  return tokenizer ? "(loaded)" : tokenizer.error();
}

// A BPE model over a, b, c with merges "b c" (rank 0) then "a b" (rank 1); `extra` is
// spliced into the top-level object.
std::string bpeJson(const std::string &extra = "", const std::string &modelExtra = "") {
  return R"({"model": {"type": "BPE", "unk_token": "<unk>", )" + modelExtra +
         R"( "vocab": {"<unk>": 0, "a": 1, "b": 2, "c": 3, "bc": 4, "ab": 5, "abc": 6,
                        "<0x78>": 7, "<0xC3>": 8, "<0xA9>": 9},
              "merges": ["b c", ["a", "b"]]})" +
         (extra.empty() ? "" : ", " + extra) + "}";
}

std::vector<TokenId> encode(const std::string &json, std::string_view text,
                            EncodeOptions options = {}) {
  auto tokenizer = Tokenizer::fromHuggingFaceJson(json, "t.json");
  EXPECT_TRUE(tokenizer) << tokenizer.error();
  return tokenizer ? (*tokenizer)->encode(text, options) : std::vector<TokenId>{};
}

TEST(TokenizerJson, rejects_text_that_is_not_json) {
  EXPECT_EQ(errorOf("{\"model\": "), "t.json: not valid JSON at byte 11");
  EXPECT_EQ(errorOf(""), "t.json: not valid JSON at byte 1");
  EXPECT_EQ(errorOf("[1, 2]"), "t.json: the top level must be an object (found array)");
}

TEST(TokenizerJson, rejects_a_missing_or_unsupported_model) {
  EXPECT_EQ(errorOf("{}"), "t.json: model is missing");
  EXPECT_EQ(errorOf(R"({"model": null})"), "t.json: model is missing");
  EXPECT_EQ(errorOf(R"({"model": {"type": "Unigram"}})"),
            "t.json: model.type 'Unigram' is not supported; kiln supports BPE, WordPiece");
  EXPECT_EQ(errorOf(R"({"model": {"type": 3}})"), "t.json: model.type must be a string (found 3)");
  EXPECT_EQ(errorOf(R"({"model": {"type": "BPE"}})"), "t.json: model.vocab is missing");
}

// Found by fuzz.tokenizer_json (an out-of-memory, 2026-12-03): one id of 48888888
// among 14 tokens made the vocabulary tables 48888889 rows long.
TEST(TokenizerJson, rejects_ids_far_beyond_the_token_count) {
  EXPECT_EQ(errorOf(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 48888888}, "merges": []}})"),
            "t.json: model.vocab['b'] 48888888 is far beyond the 2 tokens (ids must stay below "
            "1028: twice the token count plus 1024, at most 2^24)");
  EXPECT_EQ(errorOf(bpeJson(R"("added_tokens": [{"id": 5000, "content": "<x>"}])")),
            "t.json: added_tokens[0].id 5000 is far beyond the 11 tokens (ids must stay below "
            "1046: twice the token count plus 1024, at most 2^24)");
  // Gaps within the bound are fine: unused rows of an embedding.
  EXPECT_EQ(errorOf(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1000}, "merges": []}})"), "(loaded)");
}

// Found by fuzz.tokenizer_json (an out-of-memory, 2026-12-05): a Prepend of ~300 bytes,
// ~200 of them spaces, then a Replace of " " by ~150 bytes made a 13-character prompt
// ~30 KB of tokens, and decoding them (the normalized <unk> 28 KB each) 670 MB.
TEST(TokenizerJson, rejects_normalizers_and_decoders_that_multiply_text) {
  const char *vocab = R"("model": {"type": "BPE", "vocab": {"a": 0}, "merges": []})";
  std::string longText(40, 'x');
  EXPECT_EQ(errorOf(std::string(R"({"normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": ")") +
                    longText + R"("}, )" + vocab + "}"),
            "t.json: normalizer can make a text up to 40 times longer plus 0 bytes; kiln accepts "
            "at most 16 times plus 1024 bytes (no shipped tokenizer comes near)");
  // Two steps that each pass multiply.
  std::string five(5, 'y');
  std::string twice = R"({"type": "Replace", "pattern": {"String": "y"}, "content": ")" + five + R"("})";
  EXPECT_EQ(errorOf(R"({"normalizer": {"type": "Sequence", "normalizers": [)" + twice + ", " + twice +
                    "]}, " + vocab + "}"),
            "t.json: normalizer can make a text up to 25 times longer plus 0 bytes; kiln accepts "
            "at most 16 times plus 1024 bytes (no shipped tokenizer comes near)");
  EXPECT_EQ(errorOf(std::string(R"({"normalizer": {"type": "Prepend", "prepend": ")") +
                    std::string(1100, 'p') + R"("}, )" + vocab + "}"),
            "t.json: normalizer can make a text up to 1 times longer plus 1100 bytes; kiln "
            "accepts at most 16 times plus 1024 bytes (no shipped tokenizer comes near)");
  EXPECT_EQ(errorOf(std::string(R"({"decoder": {"type": "Replace", "pattern": {"String": "a"}, "content": ")") +
                    longText + R"("}, )" + vocab + "}"),
            "t.json: decoder can make a text up to 40 times longer; kiln accepts at most 16 "
            "times (no shipped tokenizer comes near)");
  // Llama's normalizer (Prepend "▁", Replace " " -> "▁": 3 times plus 3 bytes) loads.
  EXPECT_EQ(errorOf(R"({"normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}, )" +
                    std::string(vocab) + "}"),
            "(loaded)");
}

TEST(TokenizerJson, rejects_wrong_types_naming_the_path) {
  EXPECT_EQ(errorOf(R"({"model": {"type": "BPE", "vocab": [], "merges": []}})"),
            "t.json: model.vocab must be an object of token: id (found array)");
  EXPECT_EQ(errorOf(R"({"model": {"type": "BPE", "vocab": {"a": "0"}, "merges": []}})"),
            "t.json: model.vocab['a'] must be an integer in 0..2147483646 (found \"0\")");
  EXPECT_EQ(errorOf(R"({"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}})"),
            "t.json: model.vocab['a'] must be an integer in 0..2147483646 (found -1)");
  EXPECT_EQ(errorOf(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": {}}})"),
            "t.json: model.merges must be an array (found object)");
  EXPECT_EQ(errorOf(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}})"),
            "t.json: model.vocab['b'] 0 is already the id of 'a'");
  EXPECT_EQ(errorOf(bpeJson(R"("added_tokens": {"id": 1})")),
            "t.json: added_tokens must be an array (found object)");
  EXPECT_EQ(errorOf(bpeJson(R"("added_tokens": [{"id": 10}])")),
            "t.json: added_tokens[0].content is missing");
  EXPECT_EQ(errorOf(bpeJson(R"("added_tokens": [{"id": 10, "content": "<x>", "special": "yes"}])")),
            "t.json: added_tokens[0].special must be true or false (found \"yes\")");
  EXPECT_EQ(errorOf(bpeJson(R"("truncation": {"max_length": 0})")),
            "t.json: truncation.max_length must be an integer in 1..2147483647 (found 0)");
}

TEST(TokenizerJson, rejects_bad_merges) {
  EXPECT_EQ(errorOf(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}})"),
            "t.json: model.merges[0] 'a' is not two tokens separated by a space");
  EXPECT_EQ(errorOf(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [7]}})"),
            "t.json: model.merges[0] must be \"left right\" or [\"left\", \"right\"] (found 7)");
  EXPECT_EQ(errorOf(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a a"]}})"),
            "t.json: model.merges[0] names 'aa', which is not in the vocabulary");
  EXPECT_EQ(
      errorOf(bpeJson("", R"("dropout": 0.1,)")),
      "t.json: model.dropout 0.1 is not supported (only null: kiln's encoding is deterministic)");
}

TEST(TokenizerJson, rejects_unsupported_components_naming_the_path) {
  EXPECT_EQ(errorOf(bpeJson(R"("pre_tokenizer": {"type": "Foo"})")),
            "t.json: pre_tokenizer.type 'Foo' is not supported; kiln supports Sequence, Metaspace, "
            "ByteLevel, Split, BertPreTokenizer");
  EXPECT_EQ(
      errorOf(bpeJson(R"("normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend",
            "prepend": "x"}, {"type": "NFKC"}]})")),
      "t.json: normalizer.normalizers[1].type 'NFKC' is not supported; kiln supports Sequence, "
      "BertNormalizer, Prepend, Replace, NFC");
  EXPECT_EQ(
      errorOf(bpeJson(R"("pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\w+"},
            "behavior": "Isolated", "invert": false})")),
      "t.json: pre_tokenizer.pattern.Regex '\\w+' is not supported; kiln supports the regexes "
      "of GPT-2, Llama 3 and Qwen 2");
  EXPECT_EQ(
      errorOf(
          bpeJson(R"("decoder": {"type": "Replace", "pattern": {"Regex": " "}, "content": "x"})")),
      "t.json: decoder.pattern is a regular expression; kiln supports only {\"String\": ...} here");
  EXPECT_EQ(errorOf(bpeJson(R"("post_processor": {"type": "TemplateProcessing", "single":
            [{"SpecialToken": {"id": "<s>"}}], "special_tokens": {}})")),
            "t.json: post_processor.single[0].SpecialToken.id '<s>' is not in "
            "post_processor.special_tokens");
  EXPECT_EQ(errorOf(R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})"),
            "t.json: model.unk_token is missing (WordPiece needs an unknown token)");
}

TEST(Unicode, normalizes_to_nfc) {
  // Composition, canonical reordering (dot below before circumflex), singletons (Angstrom
  // sign -> Å), Hangul jamo -> syllable, and invalid bytes kept while blocking composition.
  EXPECT_EQ(normalizeNfc("e\xcc\x81"), "\xc3\xa9");
  EXPECT_EQ(normalizeNfc("e\xcc\x82\xcc\xa3"), "\xe1\xbb\x87");
  EXPECT_EQ(normalizeNfc("\xe2\x84\xab"), "\xc3\x85");
  EXPECT_EQ(normalizeNfc("\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8"), "\xea\xb0\x81");
  EXPECT_EQ(normalizeNfc("e\xff\xcc\x81"), "e\xff\xcc\x81");
  EXPECT_EQ(normalizeNfc(""), "");
}

TEST(TokenizerJson, reports_files_that_cannot_be_read) {
  auto missing = Tokenizer::fromHuggingFace("/nonexistent/kiln/tokenizer.json");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), "/nonexistent/kiln/tokenizer.json: cannot be read");
  auto file = Tokenizer::fromFile("/nonexistent/kiln/model");
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error(), "/nonexistent/kiln/model: no such file or directory");
}

TEST(TokenizerJson, bpe_merges_by_rank_of_the_pair) {
  // "abc": "b c" (rank 0) merges first, then no rule joins "a" + "bc", so "abc" (a token)
  // never forms — merge ranks decide, not which concatenations are tokens.
  EXPECT_EQ(encode(bpeJson(), "abc"), (std::vector<TokenId>{1, 4}));
  EXPECT_EQ(encode(bpeJson(), "ab"), (std::vector<TokenId>{5}));
  // ignore_merges: a word that is a token is taken whole.
  EXPECT_EQ(encode(bpeJson("", R"("ignore_merges": true,)"), "abc"), (std::vector<TokenId>{6}));
}

TEST(TokenizerJson, bpe_falls_back_to_bytes_or_fused_unknowns) {
  // 'x' has a byte token; "é" is <0xC3> <0xA9>; 'y' and 'z' have none: unknown.
  std::string fallback = bpeJson("", R"("byte_fallback": true,)");
  EXPECT_EQ(encode(fallback, "x\xc3\xa9y"), (std::vector<TokenId>{7, 8, 9, 0}));
  EXPECT_EQ(encode(fallback, "yz"), (std::vector<TokenId>{0, 0}));
  EXPECT_EQ(encode(bpeJson("", R"("byte_fallback": true, "fuse_unk": true,)"), "yza"),
            (std::vector<TokenId>{0, 1}));
  // Without byte_fallback, <0xNN> entries are ordinary tokens and 'x' is unknown.
  EXPECT_EQ(encode(bpeJson(), "x"), (std::vector<TokenId>{0}));
}

TEST(TokenizerJson, splits_added_tokens_leftmost_longest) {
  std::string json = bpeJson(R"("added_tokens": [
      {"id": 10, "content": "<s>", "special": true},
      {"id": 11, "content": "<s>x", "special": false, "normalized": false},
      {"id": 12, "content": "[M]", "special": true, "lstrip": true, "rstrip": true}])");
  // At one place the longest token wins; "b<s" has no token; spaces around [M] are its.
  // (Ids checked against Hugging Face's tokenizers.)
  EXPECT_EQ(encode(json, "a<s>xb<s>c"), (std::vector<TokenId>{1, 11, 2, 10, 3}));
  EXPECT_EQ(encode(json, "a  [M] b"), (std::vector<TokenId>{1, 12, 2}));
}

TEST(TokenizerJson, matches_normalized_added_tokens_after_the_raw_ones) {
  // "<s>x" is normalized (the default for non-special tokens): it is looked for only in
  // the text left between raw tokens, so "<s>" wins and 'x' is unknown.
  std::string json = bpeJson(R"("added_tokens": [
      {"id": 10, "content": "<s>", "special": true},
      {"id": 11, "content": "<s>x", "special": false}])");
  EXPECT_EQ(encode(json, "a<s>xb<s>c"), (std::vector<TokenId>{1, 10, 0, 2, 10, 3}));
  EXPECT_EQ(encode(json, "a<s>xb"), (std::vector<TokenId>{1, 10, 0, 2}));
}

TEST(TokenizerJson, adds_post_processor_tokens_and_truncates) {
  std::string json = bpeJson(R"("added_tokens": [{"id": 10, "content": "<s>", "special": true},
                                                  {"id": 11, "content": "</s>", "special": true}],
      "truncation": {"max_length": 4, "direction": "Left"},
      "post_processor": {"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "</s>", "type_id": 0}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [10]}, "</s>": {"id": "</s>", "ids": [11]}}})");
  EncodeOptions options;
  EXPECT_EQ(encode(json, "abcab", options), (std::vector<TokenId>{1, 4, 5}));
  options.addSpecialTokens = true;
  EXPECT_EQ(encode(json, "abcab", options), (std::vector<TokenId>{10, 1, 4, 5, 11}));
  options.truncate = true; // the file's 4, cut from the start (direction Left)
  EXPECT_EQ(encode(json, "abcab", options), (std::vector<TokenId>{10, 4, 5, 11}));
  options.maxLength = 2; // only the special tokens fit
  EXPECT_EQ(encode(json, "abcab", options), (std::vector<TokenId>{10, 11}));
  auto tokenizer = Tokenizer::fromHuggingFaceJson(json, "t.json");
  ASSERT_TRUE(tokenizer);
  EXPECT_EQ((*tokenizer)->defaultMaxLength(), 4u);
  EXPECT_EQ((*tokenizer)->vocabulary().bos, 10);
  EXPECT_EQ((*tokenizer)->vocabulary().eos, 11);
}

TEST(TokenizerJson, decodes_through_the_decoder_chain) {
  // Llama 2's layout: ▁ -> space, byte tokens to bytes, fused, one leading space stripped.
  std::string json = R"({"model": {"type": "BPE", "byte_fallback": true,
      "vocab": {"<s>": 0, "\u2581a": 1, "\u2581b": 2, "<0xC3>": 3, "<0xA9>": 4, "<0xFF>": 5},
      "merges": []},
    "added_tokens": [{"id": 0, "content": "<s>", "special": true}],
    "decoder": {"type": "Sequence", "decoders": [
      {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
      {"type": "ByteFallback"}, {"type": "Fuse"},
      {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}})";
  auto tokenizer = Tokenizer::fromHuggingFaceJson(json, "t.json");
  ASSERT_TRUE(tokenizer) << tokenizer.error();
  // <s> is special (dropped); a lone <0xFF> is not UTF-8 and becomes U+FFFD.
  EXPECT_EQ(*(*tokenizer)->decode({0, 1, 3, 4, 2, 5}), "a\xc3\xa9 b\xef\xbf\xbd");
  EXPECT_FALSE((*tokenizer)->decode({6}));
}

// A SentencePiece GGUF vocabulary with user-defined "\n" and "\n\n" and a control
// token "<ctl>"; general.name is `name`.
Result<std::unique_ptr<Tokenizer>> ggufWithAddedTokens(const std::string &name,
                                                       std::vector<uint8_t> &bytes,
                                                       std::unique_ptr<gguf::GgufReader> &reader) {
  constexpr uint32_t kF32 = 6, kString = 8, kArray = 9, kI32 = 5, kU32 = 4, kBool = 7;
  std::vector<std::string> tokens = {"<unk>", "<s>",   "</s>",         "a",         "b", "\n",
                                     "\n\n",  "<ctl>", "\xe2\x96\x81", "<|im_end|>"};
  std::vector<int32_t> types = {2, 3, 3, 1, 1, 4, 4, 3, 1, 4};
  GgufBytes scoreBytes, typeBytes;
  for (size_t i = 0; i < tokens.size(); ++i)
    scoreBytes.put(0.0f);
  for (int32_t t : types)
    typeBytes.put(t);
  bytes =
      writeGguf({{"general.name", kString, stringPayload(name)},
                 {"tokenizer.ggml.model", kString, stringPayload("llama")},
                 {"tokenizer.ggml.tokens", kArray, stringArrayPayload(tokens)},
                 {"tokenizer.ggml.scores", kArray, arrayPayload(kF32, tokens.size(), scoreBytes)},
                 {"tokenizer.ggml.token_type", kArray, arrayPayload(kI32, types.size(), typeBytes)},
                 {"tokenizer.ggml.bos_token_id", kU32, scalarPayload<uint32_t>(1)},
                 {"tokenizer.ggml.unknown_token_id", kU32, scalarPayload<uint32_t>(0)},
                 {"tokenizer.ggml.add_space_prefix", kBool, scalarPayload<uint8_t>(0)}});
  auto opened = gguf::GgufReader::fromMemory(bytes.data(), bytes.size());
  if (!opened)
    return opened.takeError();
  reader = std::move(*opened);
  return Tokenizer::fromGguf(*reader);
}

// GGUF: user-defined tokens are split out of the text always, control tokens only with
// parseSpecial (llama.cpp's tokenizer_st_partition), longest first.
TEST(GgufAddedTokens, splits_user_defined_always_and_control_when_parsing_special) {
  std::vector<uint8_t> bytes;
  std::unique_ptr<gguf::GgufReader> reader;
  auto tokenizer = ggufWithAddedTokens("tiny", bytes, reader);
  ASSERT_TRUE(tokenizer) << tokenizer.error();
  EncodeOptions options;
  options.addSpecialTokens = true;
  // "\n\n\n": the longer "\n\n" first, then "\n"; "<ctl>" stays text, whose five
  // bytes have no byte tokens and become <unk>.
  std::vector<TokenId> ids = (*tokenizer)->encode("a\n\n\nb<ctl>", options);
  ASSERT_EQ(ids.size(), 10u);
  EXPECT_EQ(std::vector<TokenId>(ids.begin(), ids.begin() + 5),
            (std::vector<TokenId>{1, 3, 6, 5, 4}));
  EXPECT_EQ(std::vector<TokenId>(ids.begin() + 5, ids.end()), std::vector<TokenId>(5, 0));
  options.parseSpecial = true;
  EXPECT_EQ((*tokenizer)->encode("a\n\n\nb<ctl>", options),
            (std::vector<TokenId>{1, 3, 6, 5, 4, 7}));
}

// As llama.cpp, an end-of-generation marker is a control token even where the file says
// user-defined: split out only when parsing special tokens.
TEST(GgufAddedTokens, treats_end_of_generation_markers_as_control) {
  std::vector<uint8_t> bytes;
  std::unique_ptr<gguf::GgufReader> reader;
  auto tokenizer = ggufWithAddedTokens("tiny", bytes, reader);
  ASSERT_TRUE(tokenizer) << tokenizer.error();
  EXPECT_EQ((*tokenizer)->vocabulary().types[9], TokenType::Control);
  EncodeOptions options;
  EXPECT_EQ((*tokenizer)->encode("a<|im_end|>", options).size(), 11u); // a + 10 unknown bytes
  options.parseSpecial = true;
  EXPECT_EQ((*tokenizer)->encode("a<|im_end|>", options), (std::vector<TokenId>{3, 9}));
  EXPECT_EQ(*(*tokenizer)->decode({3, 9, 4}), "ab");
}

// As llama.cpp, a Phi-3 vocabulary's added tokens (but <s>, <unk>, <|endoftext|>) take
// the whitespace after them.
TEST(GgufAddedTokens, phi3_tokens_strip_whitespace_on_their_right) {
  std::vector<uint8_t> bytes;
  std::unique_ptr<gguf::GgufReader> reader;
  EncodeOptions options;
  options.parseSpecial = true;
  auto phi3 = ggufWithAddedTokens("Phi3", bytes, reader);
  ASSERT_TRUE(phi3) << phi3.error();
  EXPECT_EQ((*phi3)->encode("<ctl> a<s> b", options), (std::vector<TokenId>{7, 3, 1, 8, 4}));
  std::vector<uint8_t> otherBytes;
  std::unique_ptr<gguf::GgufReader> otherReader;
  auto other = ggufWithAddedTokens("tiny", otherBytes, otherReader);
  ASSERT_TRUE(other) << other.error();
  EXPECT_EQ((*other)->encode("<ctl> a", options), (std::vector<TokenId>{7, 8, 3}));
}

} // namespace
