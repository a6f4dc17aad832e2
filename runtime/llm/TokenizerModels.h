// The tokenizer models behind Tokenizer::fromGguf, one file each: SentencePiece BPE,
// byte-level BPE and WordPiece. Each takes the loaded vocabulary and reads whatever
// else its model needs from the file.
#ifndef KILN_RUNTIME_LLM_TOKENIZERMODELS_H
#define KILN_RUNTIME_LLM_TOKENIZERMODELS_H

#include "Tokenizer.h"

namespace kiln::llm {

Result<std::unique_ptr<Tokenizer>> makeSentencePieceTokenizer(Vocabulary vocab);
Result<std::unique_ptr<Tokenizer>> makeByteLevelBpeTokenizer(Vocabulary vocab,
                                                             const gguf::GgufReader &reader);
Result<std::unique_ptr<Tokenizer>> makeWordPieceTokenizer(Vocabulary vocab);

// Pieces of the models that tokenizer.json's pipeline reuses.

// GPT-2's and Llama 3's pre-tokenizer regexes (Qwen 2's is Llama 3's with maxDigits 1),
// as byte ranges of `text`.
std::vector<std::string_view> splitGpt2Words(std::string_view text);
std::vector<std::string_view> splitLlama3Words(std::string_view text, size_t maxDigits);
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
