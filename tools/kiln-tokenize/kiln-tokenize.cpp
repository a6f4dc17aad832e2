// kiln-tokenize: encodes text to token ids, or decodes ids to text, with the tokenizer
// of a GGUF file.
#include "GgufReader.h"
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
    "usage: kiln-tokenize [--bos] MODEL.gguf TEXT      print TEXT's token ids\n"
    "       kiln-tokenize MODEL.gguf --decode ID...    print the text of token ids\n"
    "\n"
    "MODEL.gguf holds the tokenizer (tokenizer.ggml.* metadata); a vocabulary-only\n"
    "file is enough. Models: llama (SentencePiece BPE), gpt2 (byte-level BPE),\n"
    "bert (WordPiece).\n"
    "  --bos      start the ids with the model's BOS token\n"
    "  --decode   read the remaining arguments as token ids\n"
    "  --         end of options (for a TEXT that starts with '-')\n"
    "  --help     show this text\n";

int usageError(const std::string &message) {
  std::fprintf(stderr, "kiln-tokenize: %s (see kiln-tokenize --help)\n", message.c_str());
  return 2;
}

} // namespace

int main(int argc, char **argv) {
  bool addBos = false, decode = false, optionsEnded = false;
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
    else if (arg == "--decode")
      decode = true;
    else if (arg.size() > 1 && arg[0] == '-')
      return usageError("unknown option '" + arg + "'");
    else
      positional.push_back(arg);
  }
  if (positional.empty())
    return usageError("missing MODEL.gguf");
  if (!decode && positional.size() != 2)
    return usageError("expected MODEL.gguf and one TEXT argument");

  auto reader = gguf::GgufReader::open(positional[0]);
  if (!reader) {
    std::fprintf(stderr, "kiln-tokenize: %s\n", reader.error().c_str());
    return 1;
  }
  auto tokenizer = llm::Tokenizer::fromGguf(**reader);
  if (!tokenizer) {
    std::fprintf(stderr, "kiln-tokenize: %s: %s\n", positional[0].c_str(), tokenizer.error().c_str());
    return 1;
  }

  if (!decode) {
    std::vector<llm::TokenId> ids = (*tokenizer)->encode(positional[1], addBos);
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
