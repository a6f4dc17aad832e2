// SentencePiece BPE ("llama" in GGUF): spaces become U+2581 (with one prepended), the
// text is split into UTF-8 characters, and adjacent pieces are merged while their
// concatenation is a token, highest score first (leftmost on ties), as llama.cpp and
// SentencePiece do. Pieces left that are not tokens fall back to <0xNN> byte tokens.
#include "PieceMerging.h"
#include "TokenizerModels.h"

#include <cstdio>

namespace kiln::llm {

namespace {

constexpr std::string_view kSpaceMarker = "\xe2\x96\x81"; // U+2581 "▁"

// Bytes of the UTF-8 sequence a lead byte starts (1 for stray continuation bytes), so
// any byte string splits into pieces.
size_t sequenceLength(uint8_t lead) {
  static const uint8_t lengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return lengths[lead >> 4];
}

class SentencePieceTokenizer final : public Tokenizer {
public:
  explicit SentencePieceTokenizer(Vocabulary vocab) : Tokenizer(std::move(vocab)) {
    for (int byte = 0; byte < 256; ++byte) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", byte);
      TokenId id = this->vocab.find(name);
      if (id == kNoToken)
        id = this->vocab.find(std::string(1, char(byte)));
      byteTokens[byte] = id == kNoToken ? this->vocab.unknown : id;
    }
  }

  const char *modelName() const override { return "llama"; }

protected:
  void encodeText(std::string_view text, bool atStart, std::vector<TokenId> &out) const override;
  void appendPiece(TokenId id, std::string &out) const override;
  void finishDecoding(std::string &text) const override {
    if (vocab.addSpacePrefix && !text.empty() && text[0] == ' ')
      text.erase(0, 1);
  }

private:
  TokenId byteTokens[256];
};

class SentencePieceSession {
public:
  SentencePieceSession(const Vocabulary &vocab, const TokenId *byteTokens, const std::string &text)
      : vocab(vocab), byteTokens(byteTokens), text(text) {}

  void run(std::vector<TokenId> &out) {
    for (size_t at = 0; at < text.size();) {
      size_t length = std::min(sequenceLength(uint8_t(text[at])), text.size() - at);
      int index = int(pieces.size());
      pieces.push_back({at, length, index - 1, at + length == text.size() ? -1 : index + 1});
      at += length;
    }
    // Higher scores merge first.
    mergePieces(pieces, [&](int left, int right) { return propose(left, right); });
    for (int i = pieces.empty() ? -1 : 0; i != -1; i = pieces[i].next)
      emit(text.substr(pieces[i].begin, pieces[i].length), out);
  }

private:
  const Vocabulary &vocab;
  const TokenId *byteTokens;
  const std::string &text;
  std::vector<Piece> pieces;
  // The two pieces each merged text was made from, to split a piece that is not a
  // token back along the merges that built it.
  std::unordered_map<std::string, std::pair<int, int>> madeFrom;

  std::optional<double> propose(int left, int right) {
    std::string merged = text.substr(pieces[left].begin, pieces[left].length + pieces[right].length);
    TokenId id = vocab.find(merged);
    if (id == kNoToken)
      return std::nullopt;
    madeFrom[merged] = {left, right};
    return vocab.scores.empty() ? 0.0 : static_cast<double>(vocab.scores[id]);
  }

  void emit(const std::string &piece, std::vector<TokenId> &out) {
    TokenId id = vocab.find(piece);
    if (id != kNoToken) {
      out.push_back(id);
      return;
    }
    auto parts = madeFrom.find(piece);
    if (parts == madeFrom.end()) {
      // A vocabulary with neither byte tokens nor an unknown token drops the byte.
      for (char byte : piece)
        if (byteTokens[uint8_t(byte)] != kNoToken)
          out.push_back(byteTokens[uint8_t(byte)]);
      return;
    }
    auto [left, right] = parts->second;
    emit(text.substr(pieces[left].begin, pieces[left].length), out);
    emit(text.substr(pieces[right].begin, pieces[right].length), out);
  }
};

void SentencePieceTokenizer::encodeText(std::string_view text, bool, std::vector<TokenId> &out) const {
  std::string escaped;
  escaped.reserve(text.size() + 8);
  if (vocab.addSpacePrefix)
    escaped += kSpaceMarker;
  for (char c : text) {
    if (c == ' ')
      escaped += kSpaceMarker;
    else
      escaped += c;
  }
  SentencePieceSession(vocab, byteTokens, escaped).run(out);
}

void SentencePieceTokenizer::appendPiece(TokenId id, std::string &out) const {
  const std::string &token = vocab.tokens[id];
  switch (vocab.types[id]) {
  case TokenType::Byte: {
    unsigned value;
    if (token.size() == 6 && std::sscanf(token.c_str(), "<0x%2X>", &value) == 1)
      out += char(value);
    return;
  }
  case TokenType::Unknown:
    out += "\xe2\x96\x85"; // "▅", llama.cpp's rendering of an unknown token
    return;
  case TokenType::UserDefined:
    out += token;
    return;
  default:
    for (size_t at = 0; at < token.size();) {
      if (token.compare(at, kSpaceMarker.size(), kSpaceMarker) == 0) {
        out += ' ';
        at += kSpaceMarker.size();
      } else {
        out += token[at++];
      }
    }
  }
}

} // namespace

Result<std::unique_ptr<Tokenizer>> makeSentencePieceTokenizer(Vocabulary vocab) {
  if (vocab.scores.empty())
    return Error{"tokenizer: 'llama' (SentencePiece) needs tokenizer.ggml.scores"};
  return std::unique_ptr<Tokenizer>(new SentencePieceTokenizer(std::move(vocab)));
}

} // namespace kiln::llm
