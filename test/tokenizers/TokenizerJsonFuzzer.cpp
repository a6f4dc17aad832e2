// libFuzzer target for the tokenizer.json loader: any bytes either load or give an
// error, never a crash; what loads must encode (with special tokens and truncation) and
// decode its own ids. Seeds: json-seeds/.
#include "Tokenizer.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view json(reinterpret_cast<const char *>(data), size);
  auto tokenizer = kiln::llm::Tokenizer::fromHuggingFaceJson(json, "fuzz.json");
  if (!tokenizer)
    return 0;
  kiln::llm::EncodeOptions options;
  std::vector<kiln::llm::TokenId> ids =
      (*tokenizer)->encode("Hello, y'all!  \xc3\x84pfel \xe4\xb8\xad\xff 3.14\n<s>[CLS]", options);
  (void)(*tokenizer)->decode(ids);
  options.addSpecialTokens = true;
  options.truncate = true;
  options.maxLength = 7;
  ids = (*tokenizer)->encode(" a  b\tc\xf0\x9f\x99\x82", options);
  (void)(*tokenizer)->decode(ids);
  return 0;
}
