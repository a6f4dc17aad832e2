// The largest tensor kiln compiles (see TensorSizeLimit.h for where the bound comes
// from).
#include "frontends/common/TensorSizeLimit.h"

#include "mlir/IR/Diagnostics.h"

#include <string>

namespace kiln {

std::optional<int64_t> boundedElementCount(llvm::ArrayRef<int64_t> shape) {
  int64_t count = 1;
  for (int64_t dim : shape) {
    // Both factors are at most 2^31 - 1, so the product stays within int64. (An empty
    // tensor with a huge dimension is rejected too: its strides do not fit int32.)
    if (dim < 0 || dim > kMaxTensorElements)
      return std::nullopt;
    count *= dim;
    if (count > kMaxTensorElements)
      return std::nullopt;
  }
  return count;
}

mlir::LogicalResult checkTensorSize(mlir::Location loc, const llvm::Twine &what,
                                    llvm::ArrayRef<int64_t> shape) {
  if (boundedElementCount(shape))
    return mlir::success();
  std::string dims;
  bool negative = false;
  for (int64_t dim : shape) {
    dims += (dims.empty() ? "" : ", ") + std::to_string(dim);
    negative |= dim < 0;
  }
  if (negative)
    return mlir::emitError(loc) << what << " has shape [" << dims
                                << "], with a negative dimension";
  return mlir::emitError(loc) << what << " has shape [" << dims << "], more than the "
                              << kMaxTensorElements
                              << " elements (2^31 - 1) a kiln kernel can address in one "
                                 "tensor (Halide indexes buffers with int32)";
}

} // namespace kiln
