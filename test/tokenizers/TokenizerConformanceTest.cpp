// Tokenizer conformance: every test string of llama.cpp's vocabulary test files
// (ggml-vocab-NAME.gguf.inp, strings separated by "\n__ggml_vocab_test__\n") must
// encode, without BOS, to exactly the ids of the matching .out line. Prints per file
// the pass count and the first mismatches.
#include "Tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace kiln;
using namespace kiln::llm;

namespace {

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

struct TestCase {
  std::string text;
  std::vector<TokenId> expected;
};

std::vector<TestCase> readCases(const std::string &inputPath, const std::string &outputPath) {
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::string inputs = readFile(inputPath);
  std::istringstream outputs(readFile(outputPath));
  std::vector<TestCase> cases;
  for (size_t at = 0, end; (end = inputs.find(separator, at)) != std::string::npos;
       at = end + separator.size()) {
    TestCase testCase{inputs.substr(at, end - at), {}};
    std::string line;
    std::getline(outputs, line);
    std::istringstream ids(line);
    for (TokenId id; ids >> id;)
      testCase.expected.push_back(id);
    cases.push_back(std::move(testCase));
  }
  return cases;
}

std::string idList(const std::vector<TokenId> &ids) {
  std::string out;
  for (TokenId id : ids)
    out += (out.empty() ? "" : " ") + std::to_string(id);
  return out;
}

std::string vocabPath(const std::string &name) {
  return std::string(KILN_TOKENIZER_DATA_DIR) + "/ggml-vocab-" + name + ".gguf";
}

class VocabularyFile : public ::testing::TestWithParam<const char *> {};

TEST_P(VocabularyFile, encodes_every_test_string_like_the_reference) {
  std::string path = vocabPath(GetParam());
  if (access(path.c_str(), R_OK) != 0)
    GTEST_SKIP() << path << " is absent";
  auto reader = gguf::GgufReader::open(path);
  ASSERT_TRUE(reader) << reader.error();
  auto tokenizer = Tokenizer::fromGguf(**reader);
  ASSERT_TRUE(tokenizer) << tokenizer.error();
  std::vector<TestCase> cases = readCases(path + ".inp", path + ".out");
  ASSERT_FALSE(cases.empty());
  size_t passed = 0, shown = 0;
  std::string mismatches;
  for (const TestCase &testCase : cases) {
    std::vector<TokenId> got = (*tokenizer)->encode(testCase.text);
    if (got == testCase.expected) {
      ++passed;
      continue;
    }
    if (shown++ < 5)
      mismatches += "  string:   '" + testCase.text + "'\n  expected: " + idList(testCase.expected) +
                    "\n  got:      " + idList(got) + "\n";
  }
  std::printf("%s: %zu/%zu strings match\n%s", GetParam(), passed, cases.size(), mismatches.c_str());
  EXPECT_EQ(passed, cases.size()) << "first mismatches:\n" << mismatches;
}

// Decoding inverts encoding for the byte-preserving models (WordPiece normalization,
// lower case and accents, is lossy).
class ByteExactVocabularyFile : public VocabularyFile {};

TEST_P(ByteExactVocabularyFile, decodes_the_reference_ids_back_to_the_text) {
  std::string path = vocabPath(GetParam());
  if (access(path.c_str(), R_OK) != 0)
    GTEST_SKIP() << path << " is absent";
  auto reader = gguf::GgufReader::open(path);
  ASSERT_TRUE(reader) << reader.error();
  auto tokenizer = Tokenizer::fromGguf(**reader);
  ASSERT_TRUE(tokenizer) << tokenizer.error();
  for (const TestCase &testCase : readCases(path + ".inp", path + ".out")) {
    auto text = (*tokenizer)->decode(testCase.expected);
    ASSERT_TRUE(text) << text.error();
    EXPECT_EQ(*text, testCase.text);
  }
}

std::string testName(const ::testing::TestParamInfo<const char *> &info) {
  std::string name = info.param;
  for (char &c : name)
    if (c == '-')
      c = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Files, VocabularyFile,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2", "bert-bge"), testName);
INSTANTIATE_TEST_SUITE_P(Files, ByteExactVocabularyFile,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2"), testName);

} // namespace
