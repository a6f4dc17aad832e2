// Tokenizer::fromGguf: loads and checks the vocabulary (tokenizer.ggml.*) and picks the
// model; encode/decode steps shared by every model.
#include "Tokenizer.h"
#include "TokenizerModels.h"

namespace kiln::llm {

TokenId Vocabulary::find(std::string_view text) const {
  auto it = ids.find(std::string(text));
  return it == ids.end() ? kNoToken : it->second;
}

Tokenizer::~Tokenizer() = default;

namespace {

// An optional special-token id: absent is kNoToken, present must name a token.
Result<TokenId> optionalTokenId(const gguf::GgufReader &reader, const char *key, size_t vocabSize) {
  if (!reader.find(key))
    return kNoToken;
  auto id = reader.getUInt(key);
  if (!id)
    return Error{"tokenizer: " + id.error()};
  if (*id >= vocabSize)
    return Error{"tokenizer: " + std::string(key) + " " + std::to_string(*id) +
                 " is outside the vocabulary of " + std::to_string(vocabSize) + " tokens"};
  return TokenId(*id);
}

Result<bool> optionalBool(const gguf::GgufReader &reader, const char *key, bool fallback) {
  if (!reader.find(key))
    return fallback;
  auto value = reader.getBool(key);
  if (!value)
    return Error{"tokenizer: " + value.error()};
  return *value;
}

Result<Vocabulary> loadVocabulary(const gguf::GgufReader &reader, bool addBosByDefault) {
  Vocabulary vocab;
  auto tokens = reader.getStringArray("tokenizer.ggml.tokens");
  if (!tokens)
    return Error{"tokenizer: " + tokens.error()};
  size_t count = tokens->size();
  if (count == 0 || count > size_t(INT32_MAX))
    return Error{"tokenizer: tokenizer.ggml.tokens has " + std::to_string(count) + " tokens"};
  vocab.tokens.assign(tokens->begin(), tokens->end());
  vocab.ids.reserve(count);
  // A repeated token text maps to its last id, as in llama.cpp.
  for (size_t i = 0; i < count; ++i)
    vocab.ids[vocab.tokens[i]] = TokenId(i);

  if (reader.find("tokenizer.ggml.scores")) {
    auto scores = reader.getFloatArray("tokenizer.ggml.scores");
    if (!scores)
      return Error{"tokenizer: " + scores.error()};
    if (scores->size() != count)
      return Error{"tokenizer: tokenizer.ggml.scores has " + std::to_string(scores->size()) +
                   " entries for " + std::to_string(count) + " tokens"};
    vocab.scores = std::move(*scores);
  }
  vocab.types.assign(count, TokenType::Normal);
  if (reader.find("tokenizer.ggml.token_type")) {
    auto types = reader.getIntArray("tokenizer.ggml.token_type");
    if (!types)
      return Error{"tokenizer: " + types.error()};
    if (types->size() != count)
      return Error{"tokenizer: tokenizer.ggml.token_type has " + std::to_string(types->size()) +
                   " entries for " + std::to_string(count) + " tokens"};
    for (size_t i = 0; i < count; ++i) {
      int64_t type = (*types)[i];
      if (type < 0 || type > int64_t(TokenType::Byte))
        return Error{"tokenizer: tokenizer.ggml.token_type element " + std::to_string(i) +
                     " is " + std::to_string(type) + " (valid: 0..6)"};
      vocab.types[i] = TokenType(type);
    }
  }

  struct SpecialId {
    const char *key;
    TokenId *id;
  };
  // BERT files name their first and last tokens cls and seperator (sic) instead.
  for (SpecialId special : {SpecialId{"tokenizer.ggml.cls_token_id", &vocab.bos},
                            SpecialId{"tokenizer.ggml.seperator_token_id", &vocab.eos},
                            SpecialId{"tokenizer.ggml.bos_token_id", &vocab.bos},
                            SpecialId{"tokenizer.ggml.eos_token_id", &vocab.eos},
                            SpecialId{"tokenizer.ggml.unknown_token_id", &vocab.unknown},
                            SpecialId{"tokenizer.ggml.padding_token_id", &vocab.padding}}) {
    auto id = optionalTokenId(reader, special.key, count);
    if (!id)
      return id.takeError();
    if (*id != kNoToken)
      *special.id = *id;
  }
  auto addBos = optionalBool(reader, "tokenizer.ggml.add_bos_token", addBosByDefault);
  auto addSpacePrefix = optionalBool(reader, "tokenizer.ggml.add_space_prefix", true);
  if (!addBos)
    return addBos.takeError();
  if (!addSpacePrefix)
    return addSpacePrefix.takeError();
  vocab.addBos = *addBos;
  vocab.addSpacePrefix = *addSpacePrefix;
  if (reader.find("tokenizer.ggml.pre")) {
    auto pre = reader.getString("tokenizer.ggml.pre");
    if (!pre)
      return Error{"tokenizer: " + pre.error()};
    vocab.preTokenizer = std::string(*pre);
  }
  return vocab;
}

} // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::fromGguf(const gguf::GgufReader &reader) {
  auto model = reader.getString("tokenizer.ggml.model");
  if (!model)
    return Error{"tokenizer: " + model.error()};
  // add_bos defaults follow llama.cpp: SentencePiece and WordPiece models add one.
  bool sentencePiece = *model == "llama", byteLevel = *model == "gpt2", wordPiece = *model == "bert";
  if (!sentencePiece && !byteLevel && !wordPiece)
    return Error{"tokenizer: tokenizer.ggml.model '" + std::string(*model) +
                 "' is not supported (supported: llama, gpt2, bert)"};
  auto vocab = loadVocabulary(reader, !byteLevel);
  if (!vocab)
    return vocab.takeError();
  if (sentencePiece)
    return makeSentencePieceTokenizer(std::move(*vocab));
  if (byteLevel)
    return makeByteLevelBpeTokenizer(std::move(*vocab), reader);
  return makeWordPieceTokenizer(std::move(*vocab));
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool addBos) const {
  std::vector<TokenId> ids;
  if (addBos && vocab.bos != kNoToken)
    ids.push_back(vocab.bos);
  if (!text.empty())
    encodeText(text, ids);
  return ids;
}

Result<std::string> Tokenizer::decode(const std::vector<TokenId> &ids) const {
  std::string text;
  for (TokenId id : ids) {
    if (id < 0 || size_t(id) >= vocab.size())
      return Error{"tokenizer: token id " + std::to_string(id) + " is outside the vocabulary of " +
                   std::to_string(vocab.size()) + " tokens"};
    if (vocab.types[id] == TokenType::Control && id != vocab.unknown)
      continue;
    appendPiece(id, text);
  }
  finishDecoding(text);
  return text;
}

} // namespace kiln::llm
