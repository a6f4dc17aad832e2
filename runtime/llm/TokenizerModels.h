// The tokenizer models behind Tokenizer::fromGguf, one file each: SentencePiece BPE,
// byte-level BPE, WordPiece and RWKV's trie. Each takes the loaded vocabulary and reads whatever
// else its model needs from the file.
#ifndef KILN_RUNTIME_LLM_TOKENIZERMODELS_H
#define KILN_RUNTIME_LLM_TOKENIZERMODELS_H

#include "Tokenizer.h"

namespace kiln::llm {

Result<std::unique_ptr<Tokenizer>> makeSentencePieceTokenizer(Vocabulary vocab);
Result<std::unique_ptr<Tokenizer>> makeByteLevelBpeTokenizer(Vocabulary vocab,
                                                             const gguf::GgufReader &reader);
Result<std::unique_ptr<Tokenizer>> makeWordPieceTokenizer(Vocabulary vocab);
Result<std::unique_ptr<Tokenizer>> makeRwkvTokenizer(Vocabulary vocab);

// A byte-level BPE pre-tokenizer as llama.cpp knows it by tokenizer.ggml.pre: the regexes
// that split text into words (each piece of one split again by the next) and what else the
// name changes. The rows are in ByteLevelPreTokenizers.cpp.
struct ByteLevelPreTokenizer {
  enum : unsigned {
    // A word that is itself a token becomes that token without merging (ignore_merges).
    kIgnoreMerges = 1,
    // BOS is added when tokenizer.ggml.add_bos_token is absent.
    kAddBos = 2,
    // No BOS unless tokenizer.ggml.bos_token_id names one (instead of byte-level BPE's
    // default, token 11).
    kNoBos = 4,
  };
  std::vector<const char *> names;
  std::vector<const char *> regexes;
  unsigned flags = 0;
};
const std::vector<ByteLevelPreTokenizer> &byteLevelPreTokenizers();
// The row naming `name`; an empty name is "default", as in llama.cpp. nullptr if none.
const ByteLevelPreTokenizer *findByteLevelPreTokenizer(std::string_view name);

// Pieces of the models that tokenizer.json's pipeline reuses.

// GPT-2's bytes_to_unicode: the printable character (UTF-8) standing for a byte, and
// back (-1 for a code point that stands for no byte).
const std::string &byteLevelCharacter(uint8_t byte);
int byteLevelByte(uint32_t codePoint);
// WordPiece's greedy longest-match-first cover of one word: the first piece is looked up
// as wordPrefix + piece, the others as continuingPrefix + piece; a word that cannot be
// covered (or has more than maxCharacters code points, when not 0) is the unknown token.
// longestToken bounds the bytes of a vocabulary entry.
void encodeWordPiece(const Vocabulary &vocab, std::string_view word, std::string_view wordPrefix,
                     std::string_view continuingPrefix, size_t maxCharacters,
                     size_t longestToken, std::vector<TokenId> &out);

} // namespace kiln::llm

#endif // KILN_RUNTIME_LLM_TOKENIZERMODELS_H
