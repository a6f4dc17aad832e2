// kiln-fuse-epilogues: elementwise consumers join the contraction that feeds them.
#include "compiler/Passes.h"
#include "compiler/Transforms/Fusion.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/DenseSet.h"

namespace kiln {
#define GEN_PASS_DEF_FUSEEPILOGUES
#include "compiler/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;
using namespace kiln::fusion;

namespace {

/// Every tensor operand of `generic` is read at exactly the point it writes (all loops
/// parallel, every input map equal to the output map): a pointwise step.
bool isPointwise(linalg::GenericOp generic) {
  if (generic.getNumReductionLoops() != 0 || generic.getNumDpsInits() != 1)
    return false;
  AffineMap out = generic.getMatchingIndexingMap(generic.getDpsInitOperand(0));
  return out.isIdentity();
}

/// The dispatch's one result is a contraction (a generic with reduction loops: a
/// matmul, a convolution, a product over packed weights that kiln.dequantize decodes)
/// or a pointwise epilogue already fused onto one: the shape of kernel that a tiled
/// schedule computes tile by tile, its epilogue applied to each tile while the tile is
/// in registers (a packed product's kernel computes its columns inside the epilogue,
/// Stage::placeIntoOutput). Dispatches computing other kiln ops (attention, cache
/// writes) have kernels of their own.
bool endsInContraction(DispatchOp dispatch) {
  Block &body = dispatch.getBody().front();
  if (dispatch.getNumResults() != 1)
    return false;
  for (Operation &op : body.without_terminator())
    if (!isa<linalg::GenericOp, tensor::EmptyOp, arith::ConstantOp, DequantizeOp>(op))
      return false;
  Value result = body.getTerminator()->getOperand(0);
  while (auto generic = result.getDefiningOp<linalg::GenericOp>()) {
    if (generic.getNumReductionLoops() != 0)
      return generic.getNumDpsInits() == 1;
    if (!isPointwise(generic))
      return false;
    // Follow the operand that carries the contraction: the one computed in the dispatch.
    Value next;
    for (OpOperand *input : generic.getDpsInputOperands())
      if (input->get().getDefiningOp<linalg::GenericOp>() &&
          generic.getMatchingIndexingMap(input).isIdentity())
        next = input->get();
    if (!next)
      return false;
    result = next;
  }
  return false;
}

/// `consumer` is elementwise and reads `producer`'s result only pointwise: as an input
/// of its generics at the point each writes, so the producer's tile is all it needs.
bool readsPointwise(DispatchOp producer, DispatchOp consumer) {
  return isElementwise(consumer) && everyReadOf(producer, consumer, [](OpOperand &use) {
           auto generic = dyn_cast<linalg::GenericOp>(use.getOwner());
           return generic && isPointwise(generic) && !generic.isDpsInit(&use) &&
                  generic.getMatchingIndexingMap(&use).isIdentity() &&
                  generic.getResult(0).getType() == use.get().getType();
         });
}

struct FuseEpiloguesPass : kiln::impl::FuseEpiloguesBase<FuseEpiloguesPass> {
  void runOnOperation() override {
    IRRewriter rewriter(&getContext());
    forEachDispatch(getOperation(), [&](DispatchOp consumer, llvm::DenseSet<Operation *> &erased) {
      for (Value input : consumer.getInputs()) {
        auto producer = input.getDefiningOp<DispatchOp>();
        if (!producer || producer->hasAttr("kiln.library") || !feedsOnly(producer, consumer) ||
            !endsInContraction(producer) || !readsPointwise(producer, consumer))
          continue;
        erased.insert(producer);
        erased.insert(consumer);
        fuse(rewriter, producer, consumer);
        // A fused dispatch is no longer elementwise: one epilogue per contraction.
        break;
      }
    });
  }
};

} // namespace
