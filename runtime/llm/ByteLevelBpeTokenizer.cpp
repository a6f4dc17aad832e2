// Byte-level BPE ("gpt2" in GGUF): the text is split into words by the regexes of its
// pre-tokenizer (tokenizer.ggml.pre; ByteLevelPreTokenizers.cpp), each word's bytes are
// mapped to printable characters (GPT-2's bytes_to_unicode), and adjacent pieces merge by
// tokenizer.ggml.merges rank, lowest first (leftmost on ties). The byte mapping serves
// tokenizer.json's ByteLevel pre-tokenizer too.
#include "PieceMerging.h"
#include "PreTokenizerRegex.h"
#include "TokenizerModels.h"
#include "Unicode.h"


namespace kiln::llm {

namespace {

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68
// bytes for U+0100 upwards in byte order, so every byte is a visible character.
struct ByteCharacters {
  std::string utf8[256];
  std::unordered_map<uint32_t, uint8_t> byteOf;

  ByteCharacters() {
    uint32_t next = 256;
    for (uint32_t byte = 0; byte < 256; ++byte) {
      bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
                       (byte >= 0xAE && byte <= 0xFF);
      uint32_t codePoint = printable ? byte : next++;
      appendUtf8(utf8[byte], codePoint);
      byteOf[codePoint] = uint8_t(byte);
    }
  }
};

const ByteCharacters &byteCharacters() {
  static const ByteCharacters table;
  return table;
}

} // namespace

const std::string &byteLevelCharacter(uint8_t byte) { return byteCharacters().utf8[byte]; }

int byteLevelByte(uint32_t codePoint) {
  const ByteCharacters &characters = byteCharacters();
  auto found = characters.byteOf.find(codePoint);
  return found == characters.byteOf.end() ? -1 : found->second;
}

namespace {

class ByteLevelBpeTokenizer final : public Tokenizer {
public:
  ByteLevelBpeTokenizer(Vocabulary vocab, std::unordered_map<std::string, uint32_t> ranks,
                        std::vector<PreTokenizerRegex> regexes, bool ignoreMerges)
      : Tokenizer(std::move(vocab)), mergeRanks(std::move(ranks)), regexes(std::move(regexes)),
        ignoreMerges(ignoreMerges) {}

  const char *modelName() const override { return "gpt2"; }

protected:
  void encodeText(std::string_view text, bool, std::vector<TokenId> &out) const override {
    for (std::string_view word : splitWords(text, regexes))
      encodeWord(word, out);
  }
  void appendPiece(TokenId id, std::string &out) const override;

private:
  // "left right" -> merge rank.
  std::unordered_map<std::string, uint32_t> mergeRanks;
  std::vector<PreTokenizerRegex> regexes;
  bool ignoreMerges;

  void encodeWord(std::string_view word, std::vector<TokenId> &out) const;
};

void ByteLevelBpeTokenizer::encodeWord(std::string_view word, std::vector<TokenId> &out) const {
  if (word.empty())
    return;
  const ByteCharacters &characters = byteCharacters();
  std::string mapped;
  std::vector<Piece> pieces;
  for (char byte : word) {
    const std::string &character = characters.utf8[uint8_t(byte)];
    int index = int(pieces.size());
    pieces.push_back({mapped.size(), character.size(), index - 1, index + 1});
    mapped += character;
  }
  pieces.back().next = -1;
  if (ignoreMerges) {
    if (TokenId whole = vocab.find(mapped); whole != kNoToken) {
      out.push_back(whole);
      return;
    }
  }

  // Lower merge ranks apply first.
  std::string key;
  mergePieces(pieces, [&](int left, int right) -> std::optional<double> {
    key.assign(mapped, pieces[left].begin, pieces[left].length);
    key += ' ';
    key.append(mapped, pieces[right].begin, pieces[right].length);
    auto rank = mergeRanks.find(key);
    if (rank == mergeRanks.end())
      return std::nullopt;
    return -static_cast<double>(rank->second);
  });

  for (int i = 0; i != -1; i = pieces[i].next) {
    std::string_view piece = std::string_view(mapped).substr(pieces[i].begin, pieces[i].length);
    TokenId id = vocab.find(piece);
    if (id != kNoToken) {
      out.push_back(id);
      continue;
    }
    // A piece no merge produced is a single byte character; vocabularies without all
    // 256 of them get the unknown token, if any.
    for (size_t at = 0; at < piece.size();) {
      size_t begin = at;
      decodeUtf8(piece, at);
      TokenId single = vocab.find(piece.substr(begin, at - begin));
      if (single == kNoToken)
        single = vocab.unknown;
      if (single != kNoToken)
        out.push_back(single);
    }
  }
}

void ByteLevelBpeTokenizer::appendPiece(TokenId id, std::string &out) const {
  const std::string &token = vocab.tokens[id];
  if (vocab.types[id] == TokenType::UserDefined) {
    out += token;
    return;
  }
  const ByteCharacters &characters = byteCharacters();
  for (size_t at = 0; at < token.size();) {
    size_t begin = at;
    auto byte = characters.byteOf.find(decodeUtf8(token, at));
    if (byte != characters.byteOf.end())
      out += char(byte->second);
    else
      out.append(token, begin, at - begin);
  }
}

} // namespace

Result<std::unique_ptr<Tokenizer>> makeByteLevelBpeTokenizer(Vocabulary vocab,
                                                             const gguf::GgufReader &reader) {
  const ByteLevelPreTokenizer *pre = findByteLevelPreTokenizer(vocab.preTokenizer);
  if (!pre) {
    std::string names;
    for (const ByteLevelPreTokenizer &row : byteLevelPreTokenizers())
      for (const char *name : row.names)
        names += (names.empty() ? "" : ", ") + std::string(name);
    return Error{"tokenizer: pre-tokenizer '" + vocab.preTokenizer +
                 "' (tokenizer.ggml.pre) is not supported; supported: " + names};
  }
  std::vector<PreTokenizerRegex> regexes;
  for (const char *pattern : pre->regexes) {
    auto regex = PreTokenizerRegex::compile(pattern);
    if (!regex)
      return Error{"tokenizer: pre-tokenizer '" + vocab.preTokenizer + "': " + regex.error()};
    regexes.push_back(std::move(*regex));
  }
  // As llama.cpp: the name decides whether BOS is added when the file does not say, and
  // byte-level BPE's BOS and EOS are token 11 (Falcon's) when the file names none.
  if (!reader.find("tokenizer.ggml.add_bos_token"))
    vocab.addBos = pre->flags & ByteLevelPreTokenizer::kAddBos;
  TokenId fallback = vocab.size() > 11 ? 11 : kNoToken;
  if (!reader.find("tokenizer.ggml.bos_token_id"))
    vocab.bos = pre->flags & ByteLevelPreTokenizer::kNoBos ? kNoToken : fallback;
  if (!reader.find("tokenizer.ggml.eos_token_id"))
    vocab.eos = fallback;
  auto merges = reader.getStringArray("tokenizer.ggml.merges");
  if (!merges)
    return Error{"tokenizer: 'gpt2' (byte-level BPE) needs merges: " + merges.error()};
  std::unordered_map<std::string, uint32_t> ranks;
  ranks.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    std::string_view merge = (*merges)[i];
    size_t space = merge.find(' ', 1);
    if (space == std::string_view::npos || space + 1 == merge.size())
      return Error{"tokenizer: tokenizer.ggml.merges element " + std::to_string(i) + " '" +
                   std::string(merge) + "' is not two pieces separated by a space"};
    ranks.emplace(std::string(merge), uint32_t(i));
  }
  return std::unique_ptr<Tokenizer>(new ByteLevelBpeTokenizer(
      std::move(vocab), std::move(ranks), std::move(regexes),
      pre->flags & ByteLevelPreTokenizer::kIgnoreMerges));
}

} // namespace kiln::llm
