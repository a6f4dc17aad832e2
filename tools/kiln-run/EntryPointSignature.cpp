// Reading an entry point's signature through the runtime's C API.
#include "EntryPointSignature.h"

#include "RuntimeHandles.h"
#include "TensorComparison.h"

namespace kiln::tools {

namespace {

Expected<std::vector<TensorSlot>> readSlots(const kiln_module *module, size_t entryPoint,
                                            bool inputs) {
  size_t count = inputs ? kiln_module_input_count(module, entryPoint)
                        : kiln_module_output_count(module, entryPoint);
  std::vector<TensorSlot> slots;
  for (size_t i = 0; i < count; ++i) {
    kiln_tensor_info info;
    kiln_status status = inputs ? kiln_module_input_info(module, entryPoint, i, &info)
                                : kiln_module_output_info(module, entryPoint, i, &info);
    if (MaybeError error = statusError(status, std::string("cannot describe ") +
                                                   (inputs ? "input " : "output ") +
                                                   std::to_string(i)))
      return *error;
    slots.push_back({info.name, info.dtype,
                     std::vector<int64_t>(info.shape, info.shape + info.rank)});
  }
  return slots;
}

} // namespace

std::string TensorSlot::type() const { return formatTensorType(dtype, shape); }

Expected<EntryPointSignature> readEntryPointSignature(const kiln_module *module,
                                                      size_t entryPoint) {
  const char *name = kiln_module_entry_point_name(module, entryPoint);
  if (!name)
    return Error{"the module has no entry point " + std::to_string(entryPoint)};
  Expected<std::vector<TensorSlot>> inputs = readSlots(module, entryPoint, /*inputs=*/true);
  if (!inputs)
    return inputs.error();
  Expected<std::vector<TensorSlot>> outputs = readSlots(module, entryPoint, /*inputs=*/false);
  if (!outputs)
    return outputs.error();
  return EntryPointSignature{name, std::move(*inputs), std::move(*outputs)};
}

std::string formatSlots(const std::vector<TensorSlot> &slots) {
  std::string text;
  for (const TensorSlot &slot : slots)
    text += (text.empty() ? "" : ", ") + slot.name + ": " + slot.type();
  return text;
}

std::string formatSignature(const EntryPointSignature &signature) {
  return signature.name + "(" + formatSlots(signature.inputs) + ") -> (" +
         formatSlots(signature.outputs) + ")";
}

} // namespace kiln::tools
