// kiln-tokenize: encodes text to token ids, or decodes ids to text, with the tokenizer
// of a GGUF file or a Hugging Face tokenizer.json.
#include "Tokenizer.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace kiln;

namespace {

const char *const kUsage =
    "usage: kiln-tokenize [options] MODEL TEXT       print TEXT's token ids\n"
    "       kiln-tokenize MODEL --decode ID...       print the text of token ids\n"
    "\n"
    "MODEL is a GGUF file (tokenizer.ggml.* metadata; a vocabulary-only file is\n"
    "enough), a Hugging Face tokenizer.json, or a directory holding tokenizer.json.\n"
    "GGUF models: llama (SentencePiece BPE), gpt2 (byte-level BPE), bert (WordPiece);\n"
    "tokenizer.json models: BPE, WordPiece.\n"
    "  --bos              start the ids with the model's BOS token\n"
    "  --special          add the tokenizer's special tokens (GGUF: BOS/EOS as the\n"
    "                     file says; tokenizer.json: its post_processor, e.g. [CLS] [SEP])\n"
    "  --parse-special    GGUF: control-token text in TEXT becomes the token\n"
    "  --truncate         keep at most the file's truncation.max_length ids\n"
    "  --max-length N     keep at most N ids (special tokens included)\n"
    "  --decode           read the remaining arguments as token ids\n"
    "  --                 end of options (for a TEXT that starts with '-')\n"
    "  --help             show this text\n";

int usageError(const std::string &message) {
  std::fprintf(stderr, "kiln-tokenize: %s (see kiln-tokenize --help)\n", message.c_str());
  return 2;
}

} // namespace

int main(int argc, char **argv) {
  bool addBos = false, decode = false, optionsEnded = false;
  llm::EncodeOptions options;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (optionsEnded || decode) {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--")
      optionsEnded = true;
    else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--bos")
      addBos = true;
    else if (arg == "--special")
      options.addSpecialTokens = true;
    else if (arg == "--parse-special")
      options.parseSpecial = true;
    else if (arg == "--truncate")
      options.truncate = true;
    else if (arg == "--max-length") {
      char *end = nullptr;
      errno = 0;
      unsigned long long value = i + 1 < argc ? std::strtoull(argv[i + 1], &end, 10) : 0;
      if (i + 1 >= argc || *argv[i + 1] == '\0' || *argv[i + 1] == '-' || *end != '\0' ||
          errno == ERANGE || value == 0)
        return usageError("--max-length needs a positive number");
      options.truncate = true;
      options.maxLength = size_t(value);
      ++i;
    } else if (arg == "--decode")
      decode = true;
    else if (arg.size() > 1 && arg[0] == '-')
      return usageError("unknown option '" + arg + "'");
    else
      positional.push_back(arg);
  }
  if (positional.empty())
    return usageError("missing MODEL");
  if (!decode && positional.size() != 2)
    return usageError("expected MODEL and one TEXT argument");
  if (addBos && (options.addSpecialTokens || options.truncate))
    return usageError("--bos does not combine with --special, --truncate or --max-length");

  auto tokenizer = llm::Tokenizer::fromFile(positional[0]);
  if (!tokenizer) {
    std::fprintf(stderr, "kiln-tokenize: %s\n", tokenizer.error().c_str());
    return 1;
  }

  if (!decode) {
    std::vector<llm::TokenId> ids = (*tokenizer)->encode(positional[1], options);
    if (addBos && (*tokenizer)->vocabulary().bos != llm::kNoToken)
      ids.insert(ids.begin(), (*tokenizer)->vocabulary().bos);
    for (size_t i = 0; i < ids.size(); ++i)
      std::printf(i ? " %d" : "%d", ids[i]);
    std::printf("\n");
    return 0;
  }
  std::vector<llm::TokenId> ids;
  for (size_t i = 1; i < positional.size(); ++i) {
    const char *text = positional[i].c_str();
    char *end = nullptr;
    errno = 0;
    long value = std::strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || errno == ERANGE || value < INT32_MIN || value > INT32_MAX)
      return usageError("'" + positional[i] + "' is not a token id");
    ids.push_back(llm::TokenId(value));
  }
  auto text = (*tokenizer)->decode(ids);
  if (!text) {
    std::fprintf(stderr, "kiln-tokenize: %s\n", text.error().c_str());
    return 1;
  }
  std::printf("%s\n", text->c_str());
  return 0;
}
