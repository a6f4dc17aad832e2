// The largest tensor kiln compiles, checked by the frontends on every tensor they
// type (inputs, weights, node results, caches) so that a model too large for the
// kernels is reported by name before code generation.
#ifndef KILN_FRONTENDS_COMMON_TENSORSIZELIMIT_H
#define KILN_FRONTENDS_COMMON_TENSORSIZELIMIT_H

#include "mlir/IR/Location.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/Twine.h"

#include <cstdint>
#include <optional>

namespace kiln {

/// The most elements one tensor may hold. kiln's kernels are Halide pipelines for
/// targets without the large_buffers feature, where Target::maximum_buffer_size() is
/// 2^31 - 1 and every buffer is checked against it, in elements: each dimension's
/// extent x stride (halide_error_buffer_allocation_too_large) and the product of the
/// extents (halide_error_buffer_extents_too_large); extents and strides are int32. The
/// runtime's artifact reader holds strides to the same bound.
constexpr int64_t kMaxTensorElements = (int64_t(1) << 31) - 1;

/// The element count of `shape`, or std::nullopt when a dimension is negative or the
/// count (or, in an empty tensor, a stride) exceeds kMaxTensorElements; computed
/// without overflow.
std::optional<int64_t> boundedElementCount(llvm::ArrayRef<int64_t> shape);

/// Reports at `loc` and fails unless `shape` has at most kMaxTensorElements elements
/// and no negative dimension; `what` names the tensor ("graph input 'x'").
mlir::LogicalResult checkTensorSize(mlir::Location loc, const llvm::Twine &what,
                                    llvm::ArrayRef<int64_t> shape);

} // namespace kiln

#endif // KILN_FRONTENDS_COMMON_TENSORSIZELIMIT_H
