// Walks the protobuf wire format of an .onnx file to locate initializers' raw_data.
// Reference: https://protobuf.dev/programming-guides/encoding/
#include "frontends/onnx/OnnxWireFormat.h"

#include "llvm/ADT/STLFunctionalExtras.h"

#include <optional>

using namespace kiln::onnx_import;

namespace {

enum WireType : uint64_t { Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5 };

llvm::Error malformed(uint64_t offset, const llvm::Twine &what) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "malformed protobuf at byte " + llvm::Twine(offset) +
                                     ": " + what);
}

/// Calls `visit(field, payload, payloadOffset)` for every length-delimited field of the
/// message in bytes [begin, end) of `file`; other wire types are skipped.
llvm::Error forEachLengthDelimitedField(
    llvm::StringRef file, uint64_t begin, uint64_t end,
    llvm::function_ref<llvm::Error(uint64_t, uint64_t, uint64_t)> visit) {
  uint64_t pos = begin;
  auto readVarint = [&](uint64_t &value) -> llvm::Error {
    value = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      if (pos >= end)
        return malformed(pos, "truncated varint");
      uint8_t byte = static_cast<uint8_t>(file[pos++]);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80))
        return llvm::Error::success();
    }
    return malformed(pos, "varint longer than 10 bytes");
  };
  while (pos < end) {
    uint64_t key;
    if (llvm::Error error = readVarint(key))
      return error;
    uint64_t field = key >> 3;
    switch (key & 7) {
    case Varint: {
      uint64_t ignored;
      if (llvm::Error error = readVarint(ignored))
        return error;
      break;
    }
    case Fixed64:
      pos += 8;
      break;
    case Fixed32:
      pos += 4;
      break;
    case LengthDelimited: {
      uint64_t length;
      if (llvm::Error error = readVarint(length))
        return error;
      if (length > end - pos)
        return malformed(pos, "field " + llvm::Twine(field) + " runs past its message");
      if (llvm::Error error = visit(field, pos, length))
        return error;
      pos += length;
      break;
    }
    default:
      return malformed(pos, "unsupported wire type " + llvm::Twine(key & 7));
    }
  }
  if (pos != end)
    return malformed(end, "fixed-size field runs past its message");
  return llvm::Error::success();
}

} // namespace

llvm::Expected<llvm::StringMap<uint64_t>>
kiln::onnx_import::findRawDataOffsets(llvm::StringRef fileBytes) {
  constexpr uint64_t kModelGraph = 7, kGraphInitializer = 5, kTensorName = 8,
                     kTensorRawData = 9;
  llvm::StringMap<uint64_t> offsets;
  auto visitTensor = [&](uint64_t begin, uint64_t length) -> llvm::Error {
    llvm::StringRef name;
    std::optional<uint64_t> rawData;
    if (llvm::Error error = forEachLengthDelimitedField(
            fileBytes, begin, begin + length,
            [&](uint64_t field, uint64_t pos, uint64_t size) {
              if (field == kTensorName)
                name = fileBytes.substr(pos, size);
              else if (field == kTensorRawData)
                rawData = pos;
              return llvm::Error::success();
            }))
      return error;
    if (rawData)
      offsets[name] = *rawData;
    return llvm::Error::success();
  };
  auto visitGraph = [&](uint64_t begin, uint64_t length) -> llvm::Error {
    return forEachLengthDelimitedField(
        fileBytes, begin, begin + length, [&](uint64_t field, uint64_t pos, uint64_t size) {
          return field == kGraphInitializer ? visitTensor(pos, size)
                                            : llvm::Error::success();
        });
  };
  if (llvm::Error error = forEachLengthDelimitedField(
          fileBytes, 0, fileBytes.size(), [&](uint64_t field, uint64_t pos, uint64_t size) {
            return field == kModelGraph ? visitGraph(pos, size) : llvm::Error::success();
          }))
    return std::move(error);
  return offsets;
}
