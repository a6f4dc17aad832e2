// SentencePiece BPE ("llama" in GGUF): spaces become U+2581 (with one prepended), the
// text is split into UTF-8 characters, and adjacent pieces are merged while their
// concatenation is a token, highest score first (leftmost on ties), as llama.cpp and
// SentencePiece do. Pieces left that are not tokens fall back to <0xNN> byte tokens.
#include "TokenizerModels.h"

#include <cstdio>
#include <queue>

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
  void encodeText(std::string_view text, std::vector<TokenId> &out) const override;
  void appendPiece(TokenId id, std::string &out) const override;
  void finishDecoding(std::string &text) const override {
    if (vocab.addSpacePrefix && !text.empty() && text[0] == ' ')
      text.erase(0, 1);
  }

private:
  TokenId byteTokens[256];
};

// A piece of the text being merged: a byte range, linked to its neighbours.
struct Piece {
  size_t begin, length;
  int previous, next;
};

// A candidate merge of two adjacent pieces into a token.
struct Merge {
  int left, right;
  float score;
  size_t length;
};

struct MergeOrder {
  bool operator()(const Merge &a, const Merge &b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
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
    for (int i = 1; i < int(pieces.size()); ++i)
      propose(i - 1, i);
    while (!queue.empty()) {
      Merge merge = queue.top();
      queue.pop();
      Piece &left = pieces[merge.left], &right = pieces[merge.right];
      // Stale: one side has merged with something else since.
      if (left.length == 0 || right.length == 0 || left.length + right.length != merge.length)
        continue;
      left.length += right.length;
      right.length = 0;
      left.next = right.next;
      if (right.next >= 0)
        pieces[right.next].previous = merge.left;
      propose(left.previous, merge.left);
      propose(merge.left, left.next);
    }
    for (int i = pieces.empty() ? -1 : 0; i != -1; i = pieces[i].next)
      emit(text.substr(pieces[i].begin, pieces[i].length), out);
  }

private:
  const Vocabulary &vocab;
  const TokenId *byteTokens;
  const std::string &text;
  std::vector<Piece> pieces;
  std::priority_queue<Merge, std::vector<Merge>, MergeOrder> queue;
  // The two pieces each merged text was made from, to split a piece that is not a
  // token back along the merges that built it.
  std::unordered_map<std::string, std::pair<int, int>> madeFrom;

  void propose(int left, int right) {
    if (left < 0 || right < 0)
      return;
    std::string merged = text.substr(pieces[left].begin, pieces[left].length + pieces[right].length);
    TokenId id = vocab.find(merged);
    if (id == kNoToken)
      return;
    float score = vocab.scores.empty() ? 0.0f : vocab.scores[id];
    queue.push({left, right, score, merged.size()});
    madeFrom[merged] = {left, right};
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

void SentencePieceTokenizer::encodeText(std::string_view text, std::vector<TokenId> &out) const {
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
