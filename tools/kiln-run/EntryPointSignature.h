// An entry point's inputs and outputs (name, dtype, shape) read from a loaded module,
// and how kiln's host tools print them.
#ifndef KILN_TOOLS_ENTRYPOINTSIGNATURE_H
#define KILN_TOOLS_ENTRYPOINTSIGNATURE_H

#include "Expected.h"
#include "kiln/runtime.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::tools {

// One input or output of an entry point.
struct TensorSlot {
  std::string name;
  kiln_dtype dtype;
  std::vector<int64_t> shape;

  std::string type() const; // "f32[2, 3]"
};

struct EntryPointSignature {
  std::string name;
  std::vector<TensorSlot> inputs;
  std::vector<TensorSlot> outputs;
};

Expected<EntryPointSignature> readEntryPointSignature(const kiln_module *module,
                                                      size_t entryPoint);

std::string formatSlots(const std::vector<TensorSlot> &slots); // "a: f32[2], b: i8[4]"
std::string formatSignature(const EntryPointSignature &signature); // "main(...) -> (...)"

} // namespace kiln::tools

#endif // KILN_TOOLS_ENTRYPOINTSIGNATURE_H
