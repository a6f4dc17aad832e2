// What the fusion passes share: which dispatches may merge, and the merge itself.
#ifndef KILN_COMPILER_TRANSFORMS_FUSION_H
#define KILN_COMPILER_TRANSFORMS_FUSION_H

#include "dialects/Kiln/KilnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLFunctionalExtras.h"

namespace kiln::fusion {

/// A dispatch computing only pure elementwise generics (plus cost-free producers).
bool isElementwise(DispatchOp dispatch);

/// Whether `read` holds for every use, inside `consumer`, of a block argument that
/// stands for one of `producer`'s results.
bool everyReadOf(DispatchOp producer, DispatchOp consumer,
                 llvm::function_ref<bool(mlir::OpOperand &)> read);

/// Every read of `producer`'s results inside `consumer` is the initial value of a
/// generic's output: read once per output point, so inlining costs nothing extra.
bool feedsOnlyInits(DispatchOp producer, DispatchOp consumer);

/// Every result of `producer` is read only by `consumer`.
bool feedsOnly(DispatchOp producer, DispatchOp consumer);

/// Calls `visit` on each dispatch of `function` in program order (producers before
/// their consumers) that an earlier visit has not erased; a visit that fuses records
/// the dispatches it erased in `erased`.
void forEachDispatch(mlir::func::FuncOp function,
                     llvm::function_ref<void(DispatchOp, llvm::DenseSet<mlir::Operation *> &erased)> visit);

/// Replaces `producer` and `consumer` with one dispatch computing both, at the
/// consumer. The producer's body is moved, not copied, and grows by the consumer's ops:
/// fusing a chain of n dispatches costs O(n), not the O(n^2) of cloning the growing
/// body at every step.
DispatchOp fuse(mlir::RewriterBase &rewriter, DispatchOp producer, DispatchOp consumer);

} // namespace kiln::fusion

#endif // KILN_COMPILER_TRANSFORMS_FUSION_H
