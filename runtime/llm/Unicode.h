// The Unicode knowledge the tokenizers need: UTF-8 decoding and encoding, the
// general-category class of a code point, CJK ideographs, BERT's normalization
// (accent stripping and lower-casing) and NFC. Tables are generated from Unicode 14 data by
// generate_unicode_tables.py.
#ifndef KILN_RUNTIME_LLM_UNICODE_H
#define KILN_RUNTIME_LLM_UNICODE_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::llm {

// General categories folded to what pre-tokenizers distinguish. Whitespace is the
// White_Space property (which includes \t \n \v \f \r and U+0085, controls by category);
// Other is every remaining C category, unassigned code points included.
enum class CharClass : uint8_t { Letter, Mark, Number, Punctuation, Symbol, Whitespace, Other };

CharClass charClass(uint32_t codePoint);

// The replacement for bytes that are not valid UTF-8.
constexpr uint32_t kReplacementCharacter = 0xFFFD;

// Decodes the code point starting at text[pos] and advances pos past it. A byte that
// does not start a valid (shortest-form, non-surrogate) sequence decodes as U+FFFD and
// advances one byte, so every input makes progress.
uint32_t decodeUtf8(std::string_view text, size_t &pos);
void appendUtf8(std::string &out, uint32_t codePoint);

// CJK ideograph blocks, which BERT splits into single-character words.
bool isCjkIdeograph(uint32_t codePoint);

// Appends codePoint as BERT's basic tokenizer normalizes it: NFD without nonspacing
// marks (accents), lower-cased. Possibly nothing (for a mark) or several code points.
void appendBertNormalized(std::string &out, uint32_t codePoint);

// Unicode Normalization Form C (UAX #15: canonical decomposition, canonical ordering,
// canonical composition). Bytes that are not valid UTF-8 are kept as they are and
// block composition across them.
std::string normalizeNfc(std::string_view text);

} // namespace kiln::llm

#endif // KILN_RUNTIME_LLM_UNICODE_H
