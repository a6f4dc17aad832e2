// Byte-level BPE ("gpt2" in GGUF): the text is split into words by GPT-2's
// pre-tokenizer regex, each word's bytes are mapped to printable characters (GPT-2's
// bytes_to_unicode), and adjacent pieces merge by tokenizer.ggml.merges rank, lowest
// first (leftmost on ties). The word splitting and byte mapping serve tokenizer.json's
// ByteLevel and Split pre-tokenizers too.
#include "PieceMerging.h"
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

// GPT-2's pre-tokenizer,
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// matched by hand over code points. Returns the byte ranges of the words; bytes that
// are not UTF-8 count as one non-letter, non-number character each.
std::vector<std::string_view> splitGpt2Words(std::string_view text) {
  std::vector<uint32_t> codePoints;
  std::vector<size_t> offsets; // byte offset of each code point, then the end
  for (size_t at = 0; at < text.size();) {
    offsets.push_back(at);
    codePoints.push_back(decodeUtf8(text, at));
  }
  offsets.push_back(text.size());
  size_t count = codePoints.size();
  auto classAt = [&](size_t i) { return i < count ? charClass(codePoints[i]) : CharClass::Other; };
  auto isOtherAt = [&](size_t i) {
    CharClass c = classAt(i);
    return i < count && c != CharClass::Whitespace && c != CharClass::Letter && c != CharClass::Number;
  };
  auto isAt = [&](size_t i, char c) { return i < count && codePoints[i] == uint32_t(c); };

  std::vector<std::string_view> words;
  size_t start = 0;
  auto endWord = [&](size_t end) {
    words.push_back(text.substr(offsets[start], offsets[end] - offsets[start]));
    start = end;
  };
  while (start < count) {
    size_t pos = start;
    if (isAt(pos, '\'')) {
      if (isAt(pos + 1, 's') || isAt(pos + 1, 't') || isAt(pos + 1, 'm') || isAt(pos + 1, 'd')) {
        endWord(pos + 2);
        continue;
      }
      if ((isAt(pos + 1, 'r') && isAt(pos + 2, 'e')) || (isAt(pos + 1, 'v') && isAt(pos + 2, 'e')) ||
          (isAt(pos + 1, 'l') && isAt(pos + 2, 'l'))) {
        endWord(pos + 3);
        continue;
      }
    }
    // One optional leading space joins a following letter, number or other run.
    size_t body = isAt(pos, ' ') ? pos + 1 : pos;
    CharClass bodyClass = classAt(body);
    if (body < count && (bodyClass == CharClass::Letter || bodyClass == CharClass::Number)) {
      while (body < count && classAt(body) == bodyClass)
        ++body;
      endWord(body);
      continue;
    }
    if (isOtherAt(body)) {
      while (isOtherAt(body))
        ++body;
      endWord(body);
      continue;
    }
    size_t spaces = 0;
    while (pos + spaces < count && classAt(pos + spaces) == CharClass::Whitespace)
      ++spaces;
    // \s+(?!\S): a run of whitespace before a non-space leaves its last one to join
    // the next word.
    if (spaces > 1 && pos + spaces < count) {
      endWord(pos + spaces - 1);
      continue;
    }
    endWord(pos + std::max<size_t>(spaces, 1));
  }
  return words;
}

// Llama 3's pre-tokenizer (Qwen 2's with maxDigits 1),
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// matched by hand over code points, alternatives in the regex's order.
std::vector<std::string_view> splitLlama3Words(std::string_view text, size_t maxDigits) {
  std::vector<uint32_t> codePoints;
  std::vector<size_t> offsets;
  for (size_t at = 0; at < text.size();) {
    offsets.push_back(at);
    codePoints.push_back(decodeUtf8(text, at));
  }
  offsets.push_back(text.size());
  size_t count = codePoints.size();
  auto classAt = [&](size_t i) { return i < count ? charClass(codePoints[i]) : CharClass::Other; };
  auto isLetter = [&](size_t i) { return i < count && classAt(i) == CharClass::Letter; };
  auto isNumber = [&](size_t i) { return i < count && classAt(i) == CharClass::Number; };
  auto isSpace = [&](size_t i) { return i < count && classAt(i) == CharClass::Whitespace; };
  auto isNewline = [&](size_t i) { return i < count && (codePoints[i] == '\r' || codePoints[i] == '\n'); };
  auto isOther = [&](size_t i) { return i < count && !isSpace(i) && !isLetter(i) && !isNumber(i); };
  auto lowerAt = [&](size_t i) {
    uint32_t c = i < count ? codePoints[i] : 0;
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
  };

  std::vector<std::string_view> words;
  for (size_t start = 0; start < count;) {
    size_t end = start;
    if (codePoints[start] == '\'') {
      uint32_t a = lowerAt(start + 1), b = lowerAt(start + 2);
      if (a == 's' || a == 't' || a == 'm' || a == 'd')
        end = start + 2;
      else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        end = start + 3;
    }
    if (end == start) {
      size_t letters = !isNewline(start) && !isLetter(start) && !isNumber(start) ? start + 1 : start;
      if (isLetter(letters)) {
        end = letters;
        while (isLetter(end))
          ++end;
      }
    }
    if (end == start && isNumber(start)) {
      end = start;
      while (isNumber(end) && end - start < maxDigits)
        ++end;
    }
    if (end == start) {
      size_t body = codePoints[start] == ' ' ? start + 1 : start;
      if (isOther(body)) {
        end = body;
        while (isOther(end))
          ++end;
        while (isNewline(end))
          ++end;
      }
    }
    if (end == start) {
      size_t spaces = start;
      while (isSpace(spaces))
        ++spaces;
      size_t lastNewline = spaces;
      for (size_t i = start; i < spaces; ++i)
        if (isNewline(i))
          lastNewline = i;
      if (lastNewline < spaces)
        end = lastNewline + 1;
      else if (spaces == count || spaces - start == 1)
        end = spaces;
      else
        end = spaces - 1;
    }
    words.push_back(text.substr(offsets[start], offsets[end] - offsets[start]));
    start = end;
  }
  return words;
}

namespace {

class ByteLevelBpeTokenizer final : public Tokenizer {
public:
  ByteLevelBpeTokenizer(Vocabulary vocab, std::unordered_map<std::string, uint32_t> ranks)
      : Tokenizer(std::move(vocab)), mergeRanks(std::move(ranks)) {}

  const char *modelName() const override { return "gpt2"; }

protected:
  void encodeText(std::string_view text, bool, std::vector<TokenId> &out) const override {
    for (std::string_view word : splitGpt2Words(text))
      encodeWord(word, out);
  }
  void appendPiece(TokenId id, std::string &out) const override;

private:
  // "left right" -> merge rank.
  std::unordered_map<std::string, uint32_t> mergeRanks;

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
  // Only GPT-2's own pre-tokenizer is implemented; others (llama3, qwen2, ...) split
  // words differently and would give wrong ids.
  if (!vocab.preTokenizer.empty() && vocab.preTokenizer != "gpt-2" && vocab.preTokenizer != "default")
    return Error{"tokenizer: pre-tokenizer '" + vocab.preTokenizer +
                 "' (tokenizer.ggml.pre) is not supported; supported: gpt-2, default"};
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
  return std::unique_ptr<Tokenizer>(new ByteLevelBpeTokenizer(std::move(vocab), std::move(ranks)));
}

} // namespace kiln::llm
