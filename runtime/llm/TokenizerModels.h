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

} // namespace kiln::llm

#endif // KILN_RUNTIME_LLM_TOKENIZERMODELS_H
