// Finds where each initializer's raw bytes sit inside an .onnx file by walking the
// protobuf wire format, so large weights can be mapped from the file instead of copied.
#ifndef KILN_FRONTENDS_ONNX_ONNXWIREFORMAT_H
#define KILN_FRONTENDS_ONNX_ONNXWIREFORMAT_H

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>

namespace kiln::onnx_import {

/// Maps the name of every initializer of the main graph that stores its data in
/// `raw_data` to the byte offset, within `fileBytes`, of the first raw_data byte.
/// Follows ModelProto.graph (field 7) -> GraphProto.initializer (field 5) ->
/// TensorProto.name (field 8) / raw_data (field 9). Fails on malformed input.
llvm::Expected<llvm::StringMap<uint64_t>>
findRawDataOffsets(llvm::StringRef fileBytes);

} // namespace kiln::onnx_import

#endif // KILN_FRONTENDS_ONNX_ONNXWIREFORMAT_H
