// Tokenizer: text <-> token ids for the tokenizer a GGUF file describes in its
// tokenizer.ggml.* metadata — SentencePiece BPE ("llama"), byte-level BPE ("gpt2") or
// WordPiece ("bert"). Plain C++17, no LLVM: kiln-generate and the runtime use it.
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
  bool addBos = false;
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

class Tokenizer {
public:
  // Builds the tokenizer tokenizer.ggml.model names; errors name the key at fault.
  static Result<std::unique_ptr<Tokenizer>> fromGguf(const gguf::GgufReader &reader);
  virtual ~Tokenizer();

  // Text -> ids; BOS first only when asked (and the vocabulary has one). Never fails:
  // bytes that are not valid UTF-8 are encoded as well as the model allows.
  std::vector<TokenId> encode(std::string_view text, bool addBos = false) const;
  // Ids -> text. Control tokens (BOS, EOS, ...) produce no text; an id outside the
  // vocabulary is an error.
  Result<std::string> decode(const std::vector<TokenId> &ids) const;

  const Vocabulary &vocabulary() const { return vocab; }
  // "llama", "gpt2" or "bert".
  virtual const char *modelName() const = 0;

protected:
  explicit Tokenizer(Vocabulary vocab) : vocab(std::move(vocab)) {}
  // Appends the ids of `text` (never empty) to `out`.
  virtual void encodeText(std::string_view text, std::vector<TokenId> &out) const = 0;
  // Appends the text of a non-control token.
  virtual void appendPiece(TokenId id, std::string &out) const = 0;
  // Final touches on the decoded text (a leading space, spaces before punctuation).
  virtual void finishDecoding(std::string &text) const { (void)text; }

  Vocabulary vocab;
};

} // namespace kiln::llm

#endif // KILN_RUNTIME_LLM_TOKENIZER_H
