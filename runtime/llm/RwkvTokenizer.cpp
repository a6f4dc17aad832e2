// RWKV's "world" tokenizer ("rwkv" in GGUF), as llama.cpp's llm_tokenizer_rwkv: the
// vocabulary's byte strings in a trie, the text covered greedily from the left by the
// longest token at each place. GGUF stores each token as Python's repr of its bytes
// without the b'' (llama.cpp's converter): \t \n \r \xNN and backslash-escaped
// characters, which llama_unescape_rwkv_token turns back into bytes.
#include "TokenizerModels.h"

#include <unordered_map>

namespace kiln::llm {

namespace {

std::string unescapeRwkvToken(std::string_view escaped) {
  std::string bytes;
  for (size_t i = 0; i < escaped.size(); ++i) {
    char c = escaped[i];
    if (c != '\\' || i + 1 == escaped.size()) {
      bytes += c;
      continue;
    }
    char next = escaped[++i];
    auto hex = [](char h) {
      return h >= 'a' ? h - 'a' + 10 : h >= 'A' ? h - 'A' + 10 : h - '0';
    };
    if (next == 't')
      bytes += '\t';
    else if (next == 'n')
      bytes += '\n';
    else if (next == 'r')
      bytes += '\r';
    else if (next == 'x' && i + 2 < escaped.size()) {
      bytes += char((hex(escaped[i + 1]) << 4) | hex(escaped[i + 2]));
      i += 2;
    } else
      bytes += next; // \\ \' \"
  }
  return bytes;
}

class RwkvTokenizer final : public Tokenizer {
public:
  explicit RwkvTokenizer(Vocabulary vocab) : Tokenizer(std::move(vocab)) {
    const std::vector<std::string> &tokens = this->vocab.tokens;
    pieces.reserve(tokens.size());
    values.push_back(kNoToken); // the root
    for (size_t id = 0; id < tokens.size(); ++id) {
      pieces.push_back(unescapeRwkvToken(tokens[id]));
      uint32_t node = 0;
      for (char byte : pieces.back()) {
        auto [it, added] = children.try_emplace(edge(node, byte), uint32_t(values.size()));
        if (added)
          values.push_back(kNoToken);
        node = it->second;
      }
      if (node != 0)
        values[node] = TokenId(id); // a repeated byte string keeps its last id
    }
  }

  const char *modelName() const override { return "rwkv"; }

protected:
  void encodeText(std::string_view text, bool, std::vector<TokenId> &out) const override {
    for (size_t position = 0; position < text.size();) {
      // The longest token from `position`.
      TokenId longest = kNoToken;
      size_t end = position;
      uint32_t node = 0;
      for (size_t at = position; at < text.size(); ++at) {
        auto it = children.find(edge(node, text[at]));
        if (it == children.end())
          break;
        node = it->second;
        if (values[node] != kNoToken) {
          longest = values[node];
          end = at + 1;
        }
      }
      if (longest == kNoToken) {
        // No token starts here: the unknown token for one byte, as llama.cpp.
        if (vocab.unknown != kNoToken)
          out.push_back(vocab.unknown);
        ++position;
        continue;
      }
      out.push_back(longest);
      position = end;
    }
  }

  void appendPiece(TokenId id, std::string &out) const override { out += pieces[size_t(id)]; }

private:
  static uint64_t edge(uint32_t node, char byte) { return (uint64_t(node) << 8) | uint8_t(byte); }

  std::vector<std::string> pieces; // each token's bytes
  std::unordered_map<uint64_t, uint32_t> children;
  std::vector<TokenId> values; // per trie node: the token ending there, or kNoToken
};

} // namespace

Result<std::unique_ptr<Tokenizer>> makeRwkvTokenizer(Vocabulary vocab) {
  return std::unique_ptr<Tokenizer>(new RwkvTokenizer(std::move(vocab)));
}

} // namespace kiln::llm
