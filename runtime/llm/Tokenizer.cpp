// Tokenizer::fromGguf: loads and checks the vocabulary (tokenizer.ggml.*) and picks the
// model; Tokenizer::fromFile picks GGUF or tokenizer.json; encode/decode steps shared by
// every model (added tokens, special tokens, truncation).
#include "Tokenizer.h"
#include "TokenizerModels.h"
#include "Unicode.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sys/stat.h>

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
  auto addEos = optionalBool(reader, "tokenizer.ggml.add_eos_token", false);
  auto addSpacePrefix = optionalBool(reader, "tokenizer.ggml.add_space_prefix", true);
  if (!addBos)
    return addBos.takeError();
  if (!addEos)
    return addEos.takeError();
  vocab.addEos = *addEos;
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

std::string lowercaseString(const gguf::GgufReader &reader, const char *key) {
  if (!reader.find(key))
    return "";
  auto value = reader.getString(key);
  std::string text = value ? std::string(*value) : "";
  for (char &c : text)
    c = char(std::tolower(uint8_t(c)));
  return text;
}

// llama.cpp sets lstrip/rstrip on some added tokens by model name (llama-vocab.cpp,
// "set attributes by model/tokenizer/architecture name"); kiln follows it to give the
// same ids.
void applyModelSpecificStripping(const gguf::GgufReader &reader, std::vector<AddedToken> &tokens) {
  std::string name = lowercaseString(reader, "general.name");
  std::string pre = lowercaseString(reader, "tokenizer.ggml.pre");
  std::string architecture = lowercaseString(reader, "general.architecture");
  auto contains = [](const std::string &text, std::initializer_list<const char *> parts) {
    for (const char *part : parts)
      if (text.find(part) != std::string::npos)
        return true;
    return false;
  };
  if (contains(pre, {"jina-v2-de", "jina-v2-es", "jina-v2-code"}) ||
      contains(architecture, {"nomic-bert-moe", "jina-bert-v3"})) {
    for (AddedToken &token : tokens)
      token.lstrip = token.lstrip || token.text == "<mask>";
  } else if (contains(name, {"phi-3", "phi3"})) {
    for (AddedToken &token : tokens)
      token.rstrip = token.text != "<unk>" && token.text != "<s>" && token.text != "<|endoftext|>";
  } else if (contains(name, {"modern-bert"})) {
    for (AddedToken &token : tokens)
      token.lstrip = token.lstrip || token.text == "[MASK]";
  }
}

// llama.cpp (llama-vocab.cpp, "auto-detect special tokens by text") makes tokens with
// these texts control tokens whatever their token_type says, so they are split out
// only when parsing special tokens: end-of-generation markers, and fill-in-the-middle
// markers when the file names no id for them.
constexpr const char *kEndOfGenerationTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>", "[e~["};
struct FillInTheMiddleTexts {
  const char *key;
  std::initializer_list<const char *> texts;
};
const FillInTheMiddleTexts kFillInTheMiddleTexts[] = {
    {"tokenizer.ggml.fim_pre_token_id",
     {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>",
      "<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"}},
    {"tokenizer.ggml.fim_suf_token_id",
     {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "hole\xef\xbd\x9c>",
      "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"}},
    {"tokenizer.ggml.fim_mid_token_id",
     {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>",
      "<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"}},
    {"tokenizer.ggml.fim_pad_token_id", {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"}},
    {"tokenizer.ggml.fim_rep_token_id",
     {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}},
    {"tokenizer.ggml.fim_sep_token_id", {"<|file_sep|>"}},
};

// The token types llama.cpp ends up with after its text-based overrides (see above;
// also: gpt-oss's channel markers are user-defined, harmony's "<|end|>" is not an
// end-of-generation marker next to "<|return|>" and "<|call|>", and "</s>" is a
// normal token in Gemma 4 and PLaMo vocabularies).
void applyLlamaCppTokenTypes(const gguf::GgufReader &reader, Vocabulary &vocab) {
  auto set = [&](const char *text, TokenType type) {
    TokenId id = vocab.find(text);
    if (id != kNoToken)
      vocab.types[size_t(id)] = type;
  };
  auto has = [&](const char *text) { return vocab.find(text) != kNoToken; };
  for (const char *text : kEndOfGenerationTexts)
    set(text, TokenType::Control);
  for (const FillInTheMiddleTexts &fim : kFillInTheMiddleTexts)
    if (!reader.find(fim.key))
      for (const char *text : fim.texts)
        set(text, TokenType::Control);
  for (const char *text : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"})
    set(text, TokenType::UserDefined);
  if (has("<|end|>") && ((has("<|return|>") && has("<|call|>")) || (has("<|calls|>") && has("<|flush|>"))))
    set("<|end|>", TokenType::UserDefined);
  if (has("<|tool_response>") || has("<|plamo:eos|>"))
    set("</s>", TokenType::Normal);
}

} // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::fromGguf(const gguf::GgufReader &reader) {
  auto model = reader.getString("tokenizer.ggml.model");
  if (!model)
    return Error{"tokenizer: " + model.error()};
  // add_bos defaults follow llama.cpp: SentencePiece and WordPiece models add one.
  bool sentencePiece = *model == "llama", byteLevel = *model == "gpt2", wordPiece = *model == "bert",
       rwkv = *model == "rwkv";
  if (!sentencePiece && !byteLevel && !wordPiece && !rwkv)
    return Error{"tokenizer: tokenizer.ggml.model '" + std::string(*model) +
                 "' is not supported (supported: llama, gpt2, bert, rwkv)"};
  auto vocab = loadVocabulary(reader, sentencePiece || wordPiece);
  if (!vocab)
    return vocab.takeError();
  auto tokenizer = sentencePiece ? makeSentencePieceTokenizer(std::move(*vocab))
                   : byteLevel   ? makeByteLevelBpeTokenizer(std::move(*vocab), reader)
                   : rwkv        ? makeRwkvTokenizer(std::move(*vocab))
                                 : makeWordPieceTokenizer(std::move(*vocab));
  if (!tokenizer)
    return tokenizer;
  Tokenizer &built = **tokenizer;
  applyLlamaCppTokenTypes(reader, built.vocab);
  const Vocabulary &v = built.vocab;
  // As llama.cpp's tokenizer_st_partition: user-defined tokens are always split out of
  // the text, control and unknown tokens only when parsing special tokens.
  for (size_t id = 0; id < v.size(); ++id) {
    TokenType type = v.types[id];
    if (v.tokens[id].empty() ||
        (type != TokenType::UserDefined && type != TokenType::Control && type != TokenType::Unknown))
      continue;
    AddedToken token;
    token.text = v.tokens[id];
    token.id = TokenId(id);
    token.onlyWhenParsingSpecial = type != TokenType::UserDefined;
    built.addedTokens.push_back(std::move(token));
  }
  applyModelSpecificStripping(reader, built.addedTokens);
  if (v.addBos && v.bos != kNoToken)
    built.specialPrefix.push_back(v.bos);
  if (v.addEos && v.eos != kNoToken)
    built.specialSuffix.push_back(v.eos);
  if (wordPiece) {
    // llama.cpp's WordPiece always puts [CLS] first and [SEP] last.
    auto separator = optionalTokenId(reader, "tokenizer.ggml.seperator_token_id", v.size());
    if (!separator)
      return separator.takeError();
    built.specialPrefix.assign(v.bos == kNoToken ? 0 : 1, v.bos);
    built.specialSuffix.assign(1, *separator != kNoToken ? *separator : v.eos);
    if (built.specialSuffix[0] == kNoToken)
      built.specialSuffix.clear();
  }
  built.matching = AddedTokenMatching::LongestTokenFirst;
  return tokenizer;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::fromFile(const std::string &path) {
  struct stat status;
  if (::stat(path.c_str(), &status) != 0)
    return Error{path + ": no such file or directory"};
  if (S_ISDIR(status.st_mode))
    return fromHuggingFace(path);
  char magic[4] = {};
  std::ifstream(path, std::ios::binary).read(magic, sizeof magic);
  if (std::string_view(magic, 4) != "GGUF")
    return fromHuggingFace(path);
  auto reader = gguf::GgufReader::open(path);
  if (!reader)
    return reader.takeError();
  auto tokenizer = fromGguf(**reader);
  if (!tokenizer)
    return Error{path + ": " + tokenizer.error()};
  return tokenizer;
}

namespace {

bool isWordCharacter(uint32_t cp) {
  CharClass c = charClass(cp);
  return cp == '_' || c == CharClass::Letter || c == CharClass::Number || c == CharClass::Mark;
}

// The code point ending just before byte `end` (a UTF-8 sequence's last byte).
uint32_t codePointBefore(std::string_view text, size_t end) {
  size_t begin = end - 1;
  while (begin > 0 && (uint8_t(text[begin]) & 0xC0) == 0x80 && end - begin < 4)
    --begin;
  size_t at = begin;
  return decodeUtf8(text.substr(0, end), at);
}

bool isAsciiSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

} // namespace

std::vector<TextFragment> splitAtAddedTokens(std::string_view text,
                                             std::vector<const AddedToken *> candidates,
                                             AddedTokenMatching matching) {
  std::vector<TextFragment> fragments{{0, text.size(), kNoToken}};
  if (candidates.empty() || text.empty())
    return fragments;

  // Does `token` match at `at`? Gives the matched byte range, stripped whitespace
  // included, within [lower, upper).
  auto matchAt = [&](const AddedToken &token, size_t at, size_t lower, size_t upper, size_t &begin,
                     size_t &end) {
    if (text.compare(at, token.text.size(), token.text) != 0 || at + token.text.size() > upper)
      return false;
    begin = at;
    end = at + token.text.size();
    if (token.singleWord) {
      if (begin > lower && isWordCharacter(codePointBefore(text, begin)))
        return false;
      size_t next = end;
      if (end < upper && isWordCharacter(decodeUtf8(text, next)))
        return false;
    }
    if (token.lstrip)
      while (begin > lower && isAsciiSpace(text[begin - 1]))
        --begin;
    if (token.rstrip)
      while (end < upper && isAsciiSpace(text[end]))
        ++end;
    return true;
  };

  if (matching == AddedTokenMatching::LeftmostLongest) {
    // Most places start no token: test their first byte before the tokens.
    bool startsToken[256] = {};
    for (const AddedToken *token : candidates)
      startsToken[uint8_t(token->text[0])] = true;
    std::vector<TextFragment> out;
    size_t textStart = 0;
    for (size_t at = 0; at < text.size();) {
      if (!startsToken[uint8_t(text[at])]) {
        ++at;
        continue;
      }
      const AddedToken *best = nullptr;
      size_t bestBegin = 0, bestEnd = 0;
      for (const AddedToken *token : candidates) {
        size_t begin, end;
        if ((!best || token->text.size() > best->text.size()) &&
            matchAt(*token, at, textStart, text.size(), begin, end)) {
          best = token;
          bestBegin = begin;
          bestEnd = end;
        }
      }
      if (!best) {
        ++at;
        continue;
      }
      if (bestBegin > textStart)
        out.push_back({textStart, bestBegin - textStart, kNoToken});
      out.push_back({bestBegin, bestEnd - bestBegin, best->id});
      at = textStart = bestEnd;
    }
    if (textStart < text.size())
      out.push_back({textStart, text.size() - textStart, kNoToken});
    return out;
  }

  // llama.cpp's order: the longest token first, each splitting every text fragment at
  // all its occurrences.
  std::sort(candidates.begin(), candidates.end(), [](const AddedToken *a, const AddedToken *b) {
    return a->text.size() != b->text.size() ? a->text.size() > b->text.size() : a->id < b->id;
  });
  for (const AddedToken *token : candidates) {
    std::vector<TextFragment> next;
    for (const TextFragment &fragment : fragments) {
      if (fragment.token != kNoToken) {
        next.push_back(fragment);
        continue;
      }
      size_t start = fragment.begin, upper = fragment.begin + fragment.length;
      for (size_t found, from = start;
           (found = text.substr(0, upper).find(token->text, from)) != std::string_view::npos;) {
        size_t begin, end;
        from = found + 1;
        if (!matchAt(*token, found, start, upper, begin, end))
          continue;
        if (begin > start)
          next.push_back({start, begin - start, kNoToken});
        next.push_back({begin, end - begin, token->id});
        start = from = end;
      }
      if (start < upper)
        next.push_back({start, upper - start, kNoToken});
    }
    fragments = std::move(next);
  }
  return fragments;
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool addBos) const {
  std::vector<TokenId> ids;
  if (addBos && vocab.bos != kNoToken)
    ids.push_back(vocab.bos);
  std::vector<TokenId> body = encode(text, EncodeOptions{});
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, const EncodeOptions &options) const {
  std::vector<const AddedToken *> candidates;
  for (const AddedToken &token : addedTokens)
    if (!token.normalized && (options.parseSpecial || !token.onlyWhenParsingSpecial))
      candidates.push_back(&token);
  std::vector<TokenId> ids;
  for (const TextFragment &fragment : splitAtAddedTokens(text, candidates, matching)) {
    if (fragment.token != kNoToken)
      ids.push_back(fragment.token);
    else if (fragment.length)
      encodeText(text.substr(fragment.begin, fragment.length), fragment.begin == 0, ids);
  }
  size_t added = options.addSpecialTokens ? specialPrefix.size() + specialSuffix.size() : 0;
  size_t maxLength = options.maxLength ? options.maxLength : fileMaxLength;
  if (options.truncate && maxLength) {
    size_t keep = maxLength > added ? maxLength - added : 0;
    if (ids.size() > keep)
      ids.erase(truncateFromStart ? ids.begin() : ids.begin() + keep,
                truncateFromStart ? ids.end() - keep : ids.end());
  }
  if (options.addSpecialTokens) {
    ids.insert(ids.begin(), specialPrefix.begin(), specialPrefix.end());
    ids.insert(ids.end(), specialSuffix.begin(), specialSuffix.end());
  }
  return ids;
}

Result<std::string> Tokenizer::decode(const std::vector<TokenId> &ids) const {
  for (TokenId id : ids)
    if (id < 0 || size_t(id) >= vocab.size())
      return Error{"tokenizer: token id " + std::to_string(id) + " is outside the vocabulary of " +
                   std::to_string(vocab.size()) + " tokens"};
  return render(ids);
}

std::string Tokenizer::render(const std::vector<TokenId> &ids) const {
  std::string text;
  for (TokenId id : ids) {
    if (vocab.types[id] == TokenType::Control && id != vocab.unknown)
      continue;
    appendPiece(id, text);
  }
  finishDecoding(text);
  return text;
}

} // namespace kiln::llm
