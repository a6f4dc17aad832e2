// WordPiece ("bert" in GGUF), as BERT's basic + wordpiece tokenizers do it: drop
// control characters, strip accents and lower-case, split on whitespace, punctuation
// and CJK ideographs, then cover each word greedily with the longest vocabulary
// entries; a word that cannot be covered becomes the unknown token. GGUF stores
// word-initial entries with a leading U+2581 and continuations ("##ing") bare.
#include "TokenizerModels.h"
#include "Unicode.h"

namespace kiln::llm {

namespace {

constexpr std::string_view kWordMarker = "\xe2\x96\x81"; // U+2581 "▁"

// BERT's _is_punctuation: all ASCII non-alphanumeric symbols, and Unicode P*.
bool isBertPunctuation(uint32_t cp, CharClass charClass) {
  return charClass == CharClass::Punctuation || (cp < 0x7F && charClass == CharClass::Symbol);
}

// The normalized words of `text` (basic tokenization).
std::vector<std::string> splitBertWords(std::string_view text) {
  std::vector<std::string> words(1);
  auto endWord = [&] {
    if (!words.back().empty())
      words.emplace_back();
  };
  for (size_t at = 0; at < text.size();) {
    uint32_t cp = decodeUtf8(text, at);
    CharClass charClass = llm::charClass(cp);
    if (charClass == CharClass::Whitespace) {
      endWord();
      continue;
    }
    if (cp == 0 || cp == kReplacementCharacter || charClass == CharClass::Other)
      continue;
    if (isBertPunctuation(cp, charClass) || isCjkIdeograph(cp)) {
      endWord();
      appendBertNormalized(words.back(), cp);
      endWord();
      continue;
    }
    appendBertNormalized(words.back(), cp);
  }
  if (words.back().empty())
    words.pop_back();
  return words;
}

class WordPieceTokenizer final : public Tokenizer {
public:
  explicit WordPieceTokenizer(Vocabulary vocab) : Tokenizer(std::move(vocab)) {
    for (const std::string &token : this->vocab.tokens)
      longestToken = std::max(longestToken, token.size());
  }

  const char *modelName() const override { return "bert"; }

protected:
  void encodeText(std::string_view text, bool, std::vector<TokenId> &out) const override {
    for (const std::string &word : splitBertWords(text))
      encodeWordPiece(vocab, word, kWordMarker, "", 0, longestToken, out);
  }

  void appendPiece(TokenId id, std::string &out) const override {
    const std::string &token = vocab.tokens[id];
    if (id == vocab.unknown) {
      out += " " + token;
    } else if (token.compare(0, kWordMarker.size(), kWordMarker) == 0) {
      out += ' ';
      out.append(token, kWordMarker.size());
    } else {
      out += token;
    }
  }

  // Drops the first word's space and, as HF's clean_up_tokenization does, the space
  // before punctuation.
  void finishDecoding(std::string &text) const override {
    if (!text.empty() && text[0] == ' ')
      text.erase(0, 1);
    std::string cleaned;
    for (size_t i = 0; i < text.size(); ++i) {
      bool beforePunctuation = i + 1 < text.size() && std::string_view(".,!?").find(text[i + 1]) != std::string_view::npos;
      if (!(text[i] == ' ' && beforePunctuation))
        cleaned += text[i];
    }
    text = std::move(cleaned);
  }

private:
  size_t longestToken = 0;
};

} // namespace

void encodeWordPiece(const Vocabulary &vocab, std::string_view word, std::string_view wordPrefix,
                     std::string_view continuingPrefix, size_t maxCharacters, size_t longestToken,
                     std::vector<TokenId> &out) {
  size_t characters = 0;
  for (size_t at = 0; at < word.size(); ++characters)
    decodeUtf8(word, at);
  size_t firstToken = out.size();
  std::string text = std::string(wordPrefix) + std::string(word), candidate;
  bool covered = maxCharacters == 0 || characters <= maxCharacters;
  for (size_t begin = 0; covered && begin < text.size();) {
    std::string_view prefix = begin == 0 ? std::string_view() : continuingPrefix;
    size_t end = std::min(text.size(), begin + (longestToken > prefix.size() ? longestToken - prefix.size() : 0));
    TokenId id = kNoToken;
    for (; end > begin; --end) {
      // Never cut a UTF-8 sequence.
      if (end < text.size() && (uint8_t(text[end]) & 0xC0) == 0x80)
        continue;
      candidate.assign(prefix);
      candidate.append(text, begin, end - begin);
      if ((id = vocab.find(candidate)) != kNoToken)
        break;
    }
    if (id == kNoToken)
      covered = false;
    else
      out.push_back(id);
    begin = end;
  }
  if (!covered) {
    out.resize(firstToken);
    if (vocab.unknown != kNoToken)
      out.push_back(vocab.unknown);
  }
}

Result<std::unique_ptr<Tokenizer>> makeWordPieceTokenizer(Vocabulary vocab) {
  if (vocab.unknown == kNoToken)
    vocab.unknown = vocab.find("[UNK]");
  return std::unique_ptr<Tokenizer>(new WordPieceTokenizer(std::move(vocab)));
}

} // namespace kiln::llm
