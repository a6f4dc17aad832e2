// The regular expressions pre-tokenizers split text with (llama.cpp's per-model lists in
// llama-vocab.cpp, tokenizer.json's Split patterns): compiled to a small program over code
// points and run by a Pike VM, so matching never recurses on the text and never
// backtracks (a lookahead's states are each settled once per piece). Matches are the ones
// a backtracking engine (ECMAScript's std::regex, which llama.cpp uses) finds: leftmost,
// then alternatives and greedy repeats in priority order.
#ifndef KILN_RUNTIME_LLM_PRETOKENIZERREGEX_H
#define KILN_RUNTIME_LLM_PRETOKENIZERREGEX_H

#include "Result.h"
#include "Unicode.h"

#include <string_view>
#include <utility>
#include <vector>

namespace kiln::llm {

// A text as code points, each with its class and the byte offset where it starts
// (offsets has one more entry: the text's size). Bytes that are not UTF-8 are one
// U+FFFD each.
struct CodePointText {
  explicit CodePointText(std::string_view text);
  std::vector<uint32_t> codePoints;
  std::vector<CharClass> classes;
  std::vector<size_t> offsets;
};

class PreTokenizerRegex {
public:
  // The syntax pre-tokenizer patterns use: literals (UTF-8), `|`, groups `(...)`, `(?:...)`
  // and `(?i:...)` (ASCII letters either case), lookaheads `(?=...)` and `(?!...)`, `$`
  // (the end of the piece being split), greedy `?` `*` `+` `{n}` `{n,}` `{n,m}`, classes
  // `[...]` and `[^...]` with ranges, and the escapes \s \S \d \D \w \W \r \n \t \v \f,
  // \p{..} and \P{..} for L, M, N, P, S (and their two-letter subcategories) and Han, and
  // a backslash before punctuation. \s is the White_Space property, \d and \w are ASCII
  // (as in std::regex); the letter subcategories \p{Lu}, \p{Ll}, \p{Lt}, \p{Lm}, \p{Lo}
  // match every letter, as llama.cpp folds them to \p{L} before matching; \p{Han} is the
  // CJK ideograph blocks llama.cpp's unicode_cpt_is_han names. As in llama.cpp, which
  // hands std::regex every non-ASCII space as U+000B, literals and ranges match such a
  // space only where they would match U+000B. Anything else is an error naming the
  // pattern and the place.
  static Result<PreTokenizerRegex> compile(std::string_view pattern);

  // Splits each piece of `text` (pieces given by their end indices, in code points,
  // the first starting at 0) into the regex's matches and the stretches between them,
  // appending each new piece's end to `ends`; empty pieces are left out. Within a piece,
  // matches follow one another as std::regex_iterator finds them: after an empty match,
  // a non-empty one starting at the same place, else the search resumes one code point
  // on. Lookaheads and `$` see only the piece.
  void split(const CodePointText &text, const std::vector<size_t> &pieceEnds,
             std::vector<size_t> &ends) const;

  enum class Op : uint8_t { Set, Split, Jump, End, Look, Match };
  struct Instruction {
    Op op;
    // Set: x is the set; Split: x is tried before y; Jump: x; Look: x is the program,
    // y is 1 for a negative lookahead.
    uint32_t x = 0, y = 0;
  };
  // Code points that match one Set instruction: whole classes and inclusive ranges.
  struct CharSet {
    uint8_t classes = 0; // bit (1 << CharClass)
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
    bool negated = false;
    bool contains(uint32_t codePoint, CharClass charClass) const;
  };
  using Program = std::vector<Instruction>;

private:
  friend class RegexCompiler;
  friend class RegexMatcher;
  std::vector<Program> programs; // [0] is the pattern, the others its lookaheads
  std::vector<CharSet> sets;
};

// Splits `text` by each regex in turn, every piece of one split again by the next (as
// llama.cpp's unicode_regex_split, and tokenizer.json's Sequence of Isolated Splits);
// returns the pieces as byte ranges of `text`.
std::vector<std::string_view> splitWords(std::string_view text,
                                         const std::vector<PreTokenizerRegex> &regexes);

} // namespace kiln::llm

#endif // KILN_RUNTIME_LLM_PRETOKENIZERREGEX_H
