// libFuzzer target for the safetensors reader: any bytes must be read or rejected with
// a message, never crash; every byte of an accepted file's tensors is touched so a wrong
// bound shows up under ASan.
#include "SafetensorsReader.h"

#include <cstdint>

using namespace kiln::safetensors;

namespace {
volatile uint64_t sink;
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto reader = SafetensorsReader::fromMemory(data, size);
  if (!reader) {
    if (reader.error().empty())
      __builtin_trap();
    return 0;
  }
  for (const auto &[key, value] : (*reader)->metadata())
    sink = sink + key.size() + value.size();
  for (const TensorInfo &tensor : (*reader)->tensors()) {
    if ((*reader)->findTensor(tensor.name) != &tensor ||
        tensor.fileOffset + tensor.byteSize > (*reader)->fileSize())
      __builtin_trap();
    for (uint64_t i = 0; i < tensor.byteSize; ++i)
      sink = sink + tensor.data[i];
  }
  return 0;
}
