// libFuzzer target for the ONNX frontend's protobuf wire walker, checked against
// protobuf's own parser: whenever libprotobuf accepts the bytes as a ModelProto, every
// raw_data initializer must be found, and the bytes at its offset must be its data.
#include "frontends/onnx/OnnxWireFormat.h"

#include <onnx/onnx_pb.h>

#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef bytes(reinterpret_cast<const char *>(data), size);
  llvm::Expected<llvm::StringMap<uint64_t>> offsets =
      kiln::onnx_import::findRawDataOffsets(bytes);
  onnx::ModelProto model;
  bool parsed = model.ParseFromArray(data, static_cast<int>(size));
  if (!offsets) {
    llvm::consumeError(offsets.takeError());
    return 0;
  }
  if (!parsed)
    return 0;
  llvm::StringMap<int> occurrences;
  for (const onnx::TensorProto &tensor : model.graph().initializer())
    ++occurrences[tensor.name()];
  for (const onnx::TensorProto &tensor : model.graph().initializer()) {
    // With duplicate names the walker and protobuf may legitimately pick different ones.
    if (!tensor.has_raw_data() || tensor.raw_data().empty() || occurrences[tensor.name()] != 1)
      continue;
    auto it = offsets->find(tensor.name());
    if (it == offsets->end())
      __builtin_trap(); // protobuf sees raw_data the walker missed
    const std::string &raw = tensor.raw_data();
    if (it->second > size || raw.size() > size - it->second ||
        std::memcmp(data + it->second, raw.data(), raw.size()) != 0)
      __builtin_trap(); // the offset does not point at the initializer's bytes
  }
  return 0;
}
