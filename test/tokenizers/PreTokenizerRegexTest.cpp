// PreTokenizerRegex: the pieces a pattern splits text into (matches and the text between
// them, as std::regex_iterator finds them), the syntax it accepts, and its errors.
#include "PreTokenizerRegex.h"

#include <gtest/gtest.h>

using namespace kiln::llm;

namespace {

constexpr const char *kGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

std::vector<std::string> split(std::vector<const char *> patterns, std::string_view text) {
  std::vector<PreTokenizerRegex> regexes;
  for (const char *pattern : patterns) {
    auto regex = PreTokenizerRegex::compile(pattern);
    EXPECT_TRUE(regex) << regex.error();
    if (!regex)
      return {};
    regexes.push_back(std::move(*regex));
  }
  std::vector<std::string> pieces;
  for (std::string_view word : splitWords(text, regexes))
    pieces.emplace_back(word);
  return pieces;
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizerRegex, keeps_matches_and_the_text_between_them) {
  EXPECT_EQ(split({"\\p{N}+"}, "ab12cd345"), (Pieces{"ab", "12", "cd", "345"}));
  EXPECT_EQ(split({"\\p{N}+"}, "12"), (Pieces{"12"}));
  EXPECT_TRUE(split({"\\p{N}+"}, "").empty());
  // Each regex splits every piece of the one before.
  EXPECT_EQ(split({"[\\p{P}]+", "\\p{N}"}, "a1.!b23"), (Pieces{"a", "1", ".!", "b", "2", "3"}));
}

TEST(PreTokenizerRegex, prefers_the_leftmost_match_then_earlier_alternatives_and_longer_repeats) {
  EXPECT_EQ(split({"a|ab"}, "ab"), (Pieces{"a", "b"}));
  EXPECT_EQ(split({"ab|a"}, "ab"), (Pieces{"ab"}));
  EXPECT_EQ(split({"a{1,2}"}, "aaaaa"), (Pieces{"aa", "aa", "a"}));
  EXPECT_EQ(split({"x*y|x"}, "xxxz"), (Pieces{"x", "x", "x", "z"}));
  EXPECT_EQ(split({kGpt2}, "I'm  here, 2024!"),
            (Pieces{"I", "'m", " ", " here", ",", " 2024", "!"}));
}

TEST(PreTokenizerRegex, looks_ahead_and_anchors_at_the_end_of_the_piece) {
  // \s+(?!\S) leaves the last space of a run to the word after it.
  EXPECT_EQ(split({"\\s+(?!\\S)"}, "a   b"), (Pieces{"a", "  ", " b"}));
  EXPECT_EQ(split({"\\s+$"}, "a  b  "), (Pieces{"a  b", "  "}));
  // Lookaheads see only the piece: "2" ends the piece "12", so no digit follows it.
  EXPECT_EQ(split({"\\p{N}\\p{N}", "\\p{N}(?!\\p{N})"}, "1234"), (Pieces{"1", "2", "3", "4"}));
}

TEST(PreTokenizerRegex, steps_past_empty_matches_as_std_regex_iterator_does) {
  // Groups of three digits from the right: only empty matches, between the groups.
  EXPECT_EQ(split({"(?=(\\d{3})+(?!\\d))"}, "1234567"), (Pieces{"1", "234", "567"}));
  EXPECT_EQ(split({"(?=(\\d{3})+(?!\\d))"}, "123"), (Pieces{"123"}));
  // After an empty match, a non-empty one at the same place.
  EXPECT_EQ(split({"b*"}, "abba"), (Pieces{"a", "bb", "a"}));
}

TEST(PreTokenizerRegex, reads_classes_and_properties_as_llama_cpp_does) {
  EXPECT_EQ(split({"(?i:'s|'re)"}, "'S're'RE"), (Pieces{"'S", "'re", "'RE"}));
  EXPECT_EQ(split({"[^a-c\\s]+"}, "abxy cz"), (Pieces{"ab", "xy", " c", "z"}));
  // The letter subcategories are every letter (llama.cpp folds them to \p{L}).
  EXPECT_EQ(split({"\\p{Lu}+"}, "aB1"), (Pieces{"aB", "1"}));
  EXPECT_EQ(split({"\\p{Han}+"}, "a\xe4\xb8\xad\xe6\x96\x87"
                                 "b"),
            (Pieces{"a", "\xe4\xb8\xad\xe6\x96\x87", "b"}));
  EXPECT_EQ(split({"[\\-.]|\\\\"}, "a-b.c\\"), (Pieces{"a", "-", "b", ".", "c", "\\"}));
  // \d and \w are ASCII, \s is White_Space (U+3000 here).
  EXPECT_EQ(split({"\\d+|\\s+"}, "1\xd9\xa3\xe3\x80\x80"),
            (Pieces{"1", "\xd9\xa3", "\xe3\x80\x80"}));
  // A non-ASCII space is U+000B to literals and ranges (here U+3000 inside U+0800-U+4E00).
  EXPECT_EQ(split({"[\xe0\xa0\x80-\xe4\xb8\x80]+"}, "\xe3\x80\x80\xe4\xb8\x80"),
            (Pieces{"\xe3\x80\x80", "\xe4\xb8\x80"}));
  // A byte that is not UTF-8 is one U+FFFD, a symbol, and keeps its byte.
  EXPECT_EQ(split({kGpt2}, "a\xff b"), (Pieces{"a", "\xff", " b"}));
}

TEST(PreTokenizerRegex, long_runs_neither_recurse_nor_slow_down) {
  std::string letters(200000, 'x'), spaces = std::string(100000, ' ') + "x";
  EXPECT_EQ(split({kGpt2}, letters).size(), 1u);
  EXPECT_EQ(split({kGpt2}, spaces), (Pieces{std::string(99999, ' '), " x"}));
  EXPECT_EQ(split({"[^\\p{N}]*\\p{N}"}, letters).size(), 1u);
}

TEST(PreTokenizerRegex, rejects_what_it_does_not_support_naming_the_place) {
  for (auto [pattern, message] : {std::pair<const char *, const char *>{"(a", "missing ')'"},
                                  {"a)", "unbalanced ')'"},
                                  {"a**", "lazy and possessive repeats are not supported"},
                                  {"a+?", "lazy and possessive repeats are not supported"},
                                  {"*a", "nothing to repeat"},
                                  {"a{2,1}", "malformed {n,m}"},
                                  {"a{5000}", "a repeat count above 1000"},
                                  {"\\p{Xx}", "unsupported property \\p{Xx}"},
                                  {"\\q", "unsupported escape"},
                                  {"[a", "unexpected end"},
                                  {"[]", "an empty class"},
                                  {"[z-a]", "a range out of order"},
                                  {".", "'.' is not supported"},
                                  {"(?<=a)", "unsupported group syntax"},
                                  {"(?=a)*", "an assertion cannot repeat"}}) {
    auto regex = PreTokenizerRegex::compile(pattern);
    ASSERT_FALSE(regex) << pattern;
    EXPECT_NE(regex.error().find(std::string("regex '") + pattern + "': " + message),
              std::string::npos)
        << regex.error();
  }
}

} // namespace
