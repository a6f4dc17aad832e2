// libFuzzer target for the GGUF reader and the tokenizers built on it: any bytes must
// be read or rejected with a message, never crash; an accepted file's metadata and
// tensor bytes are all touched so a wrong bound shows up under ASan, and a tokenizer it
// describes must encode and decode without crashing.
#include "GgufReader.h"
#include "Tokenizer.h"

#include <cstdint>

using namespace kiln::gguf;

namespace {

volatile uint64_t sink;

void touch(const MetadataValue &value) {
  sink = sink + value.integer + value.string.size();
  for (const char c : value.string)
    sink = sink + uint8_t(c);
  for (uint64_t i = 0; i < value.arrayLength; ++i)
    touch(value.element(i));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto reader = GgufReader::fromMemory(data, size);
  if (!reader) {
    if (reader.error().empty())
      __builtin_trap();
    return 0;
  }
  for (const MetadataEntry &entry : (*reader)->metadata()) {
    touch(entry.value);
    (void)(*reader)->getStringArray(entry.key);
    (void)(*reader)->getFloatArray(entry.key);
    (void)(*reader)->getIntArray(entry.key);
  }
  for (const TensorInfo &tensor : (*reader)->tensors())
    for (uint64_t i = 0; i < tensor.byteSize; ++i)
      sink = sink + tensor.data[i];
  auto tokenizer = kiln::llm::Tokenizer::fromGguf(**reader);
  if (!tokenizer) {
    if (tokenizer.error().empty())
      __builtin_trap();
    return 0;
  }
  std::vector<kiln::llm::TokenId> ids =
      (*tokenizer)->encode("Hello, y'all!  \xc3\x84pfel \xe4\xb8\xad\xff 3.14\n", true);
  ids.push_back(-1);
  (void)(*tokenizer)->decode(ids);
  ids.pop_back();
  (void)(*tokenizer)->decode(ids);
  return 0;
}
