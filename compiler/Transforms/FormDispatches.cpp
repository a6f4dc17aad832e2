// kiln-form-dispatches: one kiln.dispatch region per kernel-producing op.
#include "compiler/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SetVector.h"

namespace kiln {
#define GEN_PASS_DEF_FORMDISPATCHES
#include "compiler/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// Ops that compute a tensor and so need a kernel.
bool isKernelOp(Operation *op) {
  if (isa<linalg::LinalgOp, linalg::SoftmaxOp>(op))
    return true;
  if (isa<RmsNormOp, RopeOp, AttentionOp, GatherOp, DequantizeOp, CacheWriteOp,
          CausalConv1dOp, SelectiveScanOp, WkvOp>(op))
    return true;
  // Data movement that needs a kernel; reshapes do not (they view their source's bytes).
  if (isa<tensor::ExtractSliceOp, tensor::InsertSliceOp, tensor::ConcatOp, tensor::PadOp>(op))
    return true;
  bool elementwise = isa<arith::ArithDialect, math::MathDialect>(op->getDialect()) &&
                     !isa<arith::ConstantOp>(op);
  return elementwise && llvm::any_of(op->getResultTypes(), llvm::IsaPred<TensorType>);
}

/// Producers that cost nothing to recompute inside a kernel and would otherwise occupy
/// arena memory as kernel inputs.
bool isCheapToClone(Operation *op) {
  if (op->getNumOperands() != 0)
    return false;
  if (isa<tensor::EmptyOp>(op))
    return true;
  if (auto constant = dyn_cast<arith::ConstantOp>(op))
    return !isa<ShapedType>(constant.getType()) || isa<SplatElementsAttr>(constant.getValue());
  return false;
}

void wrapInDispatch(RewriterBase &rewriter, Operation *op) {
  // Values the op reads: its operands and those its regions capture from outside
  // (canonicalization hoists constants out of linalg bodies).
  llvm::SetVector<Value> reads(op->getOperands().begin(), op->getOperands().end());
  getUsedValuesDefinedAbove(op->getRegions(), reads);
  llvm::SetVector<Value> inputs;
  for (Value operand : reads) {
    Operation *producer = operand.getDefiningOp();
    if (!producer || !isCheapToClone(producer))
      inputs.insert(operand);
  }

  rewriter.setInsertionPoint(op);
  auto dispatch =
      DispatchOp::create(rewriter, op->getLoc(), op->getResultTypes(), inputs.getArrayRef());
  SmallVector<Location> argLocs;
  for (Value input : inputs)
    argLocs.push_back(input.getLoc());
  Block *body = rewriter.createBlock(&dispatch.getBody(), {},
                                     ValueRange(inputs.getArrayRef()).getTypes(), argLocs);
  IRMapping mapping;
  mapping.map(inputs.getArrayRef(), body->getArguments());
  llvm::SetVector<Operation *> cloned;
  for (Value operand : reads)
    if (!mapping.contains(operand)) {
      cloned.insert(operand.getDefiningOp());
      rewriter.clone(*operand.getDefiningOp(), mapping);
    }
  Operation *kernel = rewriter.clone(*op, mapping);
  YieldOp::create(rewriter, op->getLoc(), kernel->getResults());
  rewriter.replaceOp(op, dispatch.getResults());
  // Producers now rematerialized in every kernel that reads them may be dead outside.
  for (Operation *producer : cloned)
    if (producer->use_empty())
      rewriter.eraseOp(producer);
}

struct FormDispatchesPass : kiln::impl::FormDispatchesBase<FormDispatchesPass> {
  void runOnOperation() override {
    SmallVector<Operation *> kernels;
    getOperation().walk([&](Operation *op) {
      if (isKernelOp(op) && !op->getParentOfType<DispatchOp>() &&
          !isKernelOp(op->getParentOp()))
        kernels.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (Operation *op : kernels)
      wrapInDispatch(rewriter, op);
    // What the fusion passes start from, for kiln-compile's report.
    unsigned dispatches = 0;
    getOperation().walk([&](DispatchOp) { ++dispatches; });
    getOperation()->setAttr("kiln.dispatches_before_fusion",
                            rewriter.getI64IntegerAttr(dispatches));
  }
};

} // namespace
