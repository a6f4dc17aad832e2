// Tokenizer: text <-> token ids for the tokenizer a GGUF file describes in its
// tokenizer.ggml.* metadata — SentencePiece BPE ("llama"), byte-level BPE ("gpt2") or
// WordPiece ("bert") — or a Hugging Face tokenizer.json (BPE, WordPiece). Plain C++17,
// no LLVM: kiln-generate and the runtime use it.
#ifndef KILN_RUNTIME_LLM_TOKENIZER_H
#define KILN_RUNTIME_LLM_TOKENIZER_H

#include "GgufReader.h"
#include "Result.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kiln::llm {

using TokenId = int32_t;
constexpr TokenId kNoToken = -1;

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

// The token table and special ids, as the GGUF file gives them.
struct Vocabulary {
  std::vector<std::string> tokens;
  std::vector<float> scores;    // empty when the file has none
  std::vector<TokenType> types; // Normal for every token when the file has none
  TokenId bos = kNoToken, eos = kNoToken, unknown = kNoToken, padding = kNoToken;
  // tokenizer.ggml.add_bos_token / add_eos_token: what addSpecialTokens adds.
  bool addBos = false, addEos = false;
  // tokenizer.ggml.add_space_prefix (SentencePiece): prepend a space to the text.
  bool addSpacePrefix = true;
  // tokenizer.ggml.pre: the pre-tokenizer's name (e.g. "default", "gpt-2").
  std::string preTokenizer;

  // The id of a token's exact text, or kNoToken.
  TokenId find(std::string_view text) const;
  size_t size() const { return tokens.size(); }

  // Token text -> id.
  std::unordered_map<std::string, TokenId> ids;
};

// Text that becomes one token before the model sees the input: GGUF user-defined and
// control tokens, tokenizer.json's added_tokens.
struct AddedToken {
  std::string text;
  TokenId id = kNoToken;
  // Recognized only with EncodeOptions::parseSpecial (GGUF control and unknown tokens,
  // as llama.cpp's parse_special); the others are always split out.
  bool onlyWhenParsingSpecial = false;
  // Whitespace before (lstrip) or after (rstrip) the token belongs to it; singleWord:
  // it matches only where it is not part of a longer word.
  bool lstrip = false, rstrip = false, singleWord = false;
  // tokenizer.json's "normalized": the tokenizer matches it after normalizing, so the
  // split before the model leaves it alone.
  bool normalized = false;
};

// How tokens are found in the text when several could match.
enum class AddedTokenMatching {
  LongestTokenFirst, // llama.cpp: every occurrence of the longest token, then the next
  LeftmostLongest,   // Hugging Face: scan left to right, the longest token at each place
};

// A piece of text split at added tokens: a byte range of the text, or a token.
struct TextFragment {
  size_t begin, length;
  TokenId token; // kNoToken: the range is text
};

// Splits `text` at the occurrences of `tokens`.
std::vector<TextFragment> splitAtAddedTokens(std::string_view text,
                                             std::vector<const AddedToken *> tokens,
                                             AddedTokenMatching matching);

struct EncodeOptions {
  // The special tokens the tokenizer adds around a sequence: a GGUF file's BOS (and EOS)
  // when tokenizer.ggml.add_bos_token (add_eos_token) says so; tokenizer.json's
  // post_processor ([CLS] ... [SEP], <s> ...).
  bool addSpecialTokens = false;
  // GGUF: control-token text in the input (e.g. "<start_of_turn>") becomes the token.
  // tokenizer.json's added tokens are always recognized, as in Hugging Face's encode.
  bool parseSpecial = false;
  // Keep at most maxLength ids, special tokens included (the text's ids are cut, from
  // the end or, when the file's truncation.direction is Left, from the start).
  bool truncate = false;
  // With truncate: 0 takes tokenizer.json's truncation.max_length (no limit without one).
  size_t maxLength = 0;
};

class Tokenizer {
public:
  // Builds the tokenizer tokenizer.ggml.model names; errors name the key at fault.
  static Result<std::unique_ptr<Tokenizer>> fromGguf(const gguf::GgufReader &reader);
  // Builds the tokenizer of a Hugging Face tokenizer.json, given its path or the path of
  // a directory holding it (and optionally tokenizer_config.json, for BOS and EOS).
  // Errors name the file and the JSON path at fault.
  static Result<std::unique_ptr<Tokenizer>> fromHuggingFace(const std::string &path);
  // The same from the JSON text; `source` names it in errors.
  static Result<std::unique_ptr<Tokenizer>> fromHuggingFaceJson(std::string_view json,
                                                                const std::string &source);
  // A GGUF file, a tokenizer.json, or a directory holding tokenizer.json.
  static Result<std::unique_ptr<Tokenizer>> fromFile(const std::string &path);
  virtual ~Tokenizer();

  // Text -> ids; BOS first only when asked (and the vocabulary has one). Never fails:
  // bytes that are not valid UTF-8 are encoded as well as the model allows. Added
  // tokens are split out of the text first (see AddedToken).
  std::vector<TokenId> encode(std::string_view text, bool addBos = false) const;
  std::vector<TokenId> encode(std::string_view text, const EncodeOptions &options) const;
  // Ids -> text. Control tokens (BOS, EOS, ...) produce no text; an id outside the
  // vocabulary is an error.
  Result<std::string> decode(const std::vector<TokenId> &ids) const;

  const Vocabulary &vocabulary() const { return vocab; }
  // "llama", "gpt2", "bert" or "rwkv" (GGUF); "BPE" or "WordPiece" (tokenizer.json).
  virtual const char *modelName() const = 0;
  // tokenizer.json's truncation.max_length, or 0.
  size_t defaultMaxLength() const { return fileMaxLength; }

protected:
  explicit Tokenizer(Vocabulary vocab) : vocab(std::move(vocab)) {}
  // Appends the ids of `text` (never empty) to `out`; `atStart`: the text begins the
  // input (no added token before it).
  virtual void encodeText(std::string_view text, bool atStart, std::vector<TokenId> &out) const = 0;
  // Ids (all inside the vocabulary) -> text; by default the pieces of the non-control
  // tokens, then finishDecoding.
  virtual std::string render(const std::vector<TokenId> &ids) const;
  // Appends the text of a non-control token.
  virtual void appendPiece(TokenId id, std::string &out) const = 0;
  // Final touches on the decoded text (a leading space, spaces before punctuation).
  virtual void finishDecoding(std::string &text) const { (void)text; }

  Vocabulary vocab;
  std::vector<AddedToken> addedTokens;
  AddedTokenMatching matching = AddedTokenMatching::LongestTokenFirst;
  // What addSpecialTokens puts around the text's ids.
  std::vector<TokenId> specialPrefix, specialSuffix;
  size_t fileMaxLength = 0;
  bool truncateFromStart = false;
};

} // namespace kiln::llm

#endif // KILN_RUNTIME_LLM_TOKENIZER_H
