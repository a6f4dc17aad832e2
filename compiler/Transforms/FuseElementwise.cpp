// kiln-fuse-elementwise: chains of elementwise dispatches become one dispatch.
#include "compiler/Passes.h"
#include "compiler/Transforms/Fusion.h"
#include "compiler/Transforms/ProductWeights.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"

namespace kiln {
#define GEN_PASS_DEF_FUSEELEMENTWISE
#include "compiler/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;
using namespace kiln::fusion;

namespace {

/// A dispatch that only unpacks packed weights. Fused into its reader, the kernel reads
/// the packed bytes straight from the weights section and no f32 copy of the weights
/// ever exists; the price is unpacking again wherever the reader reuses an element.
bool isDequantize(DispatchOp dispatch) {
  bool hasDequantize = false;
  for (Operation &op : dispatch.getBody().front().without_terminator()) {
    if (!isa<DequantizeOp>(op))
      return false;
    hasDequantize = true;
  }
  return hasDequantize;
}

/// A dispatch that only widens a float weight (f16 or bf16 read from the weights
/// section) to f32: like unpacking, fused into its reader so that the kernel reads the
/// weight's own 2 bytes per value instead of an f32 copy of twice the size (written
/// whole before every run: TinyLlama-shaped F16 decode spent 45% of its time on them).
bool isWeightWidening(DispatchOp dispatch) {
  Block &body = dispatch.getBody().front();
  if (body.getTerminator()->getNumOperands() != 1)
    return false;
  auto generic = body.getTerminator()->getOperand(0).getDefiningOp<linalg::GenericOp>();
  if (!generic || !isElementwiseWidening(generic))
    return false;
  for (Operation &op : body.without_terminator())
    if (&op != generic.getOperation() && !isa<tensor::EmptyOp>(op))
      return false;
  auto input = dyn_cast<BlockArgument>(generic.getDpsInputOperand(0)->get());
  return input && input.getOwner() == &body &&
         dispatch.getInputs()[input.getArgNumber()].getDefiningOp<WeightOp>();
}

/// The ops of a dispatch that compute (what its kernel's size grows with).
unsigned countComputeOps(DispatchOp dispatch) {
  return llvm::count_if(dispatch.getBody().front(), [](Operation &op) {
    return isa<linalg::GenericOp, DequantizeOp>(op);
  });
}

/// What the pass asks of each dispatch, remembered: a fused dispatch is elementwise
/// (dequantize-only) exactly when both parts were and holds the ops of both, so its
/// body is never scanned again.
struct DispatchKind {
  bool elementwise;
  bool dequantize; // unpacks or widens weights only: fused into any reader

  unsigned computeOps;
};

struct FuseElementwisePass : kiln::impl::FuseElementwiseBase<FuseElementwisePass> {
  using FuseElementwiseBase::FuseElementwiseBase;

  void runOnOperation() override {
    IRRewriter rewriter(&getContext());
    llvm::DenseMap<Operation *, DispatchKind> kinds;
    auto kindOf = [&](DispatchOp dispatch) {
      auto [it, inserted] = kinds.try_emplace(dispatch, DispatchKind{false, false, 0});
      if (inserted)
        it->second = {isElementwise(dispatch),
                      isDequantize(dispatch) || isWeightWidening(dispatch),
                      countComputeOps(dispatch)};
      return it->second;
    };
    // Producers precede their consumers, so one pass in program order, fusing each
    // consumer with its producers until none is left, reaches the fixed point: a fusion
    // never changes what an earlier consumer or its producers could fuse with.
    forEachDispatch(getOperation(), [&](DispatchOp consumer, llvm::DenseSet<Operation *> &erased) {
      bool fusedOne = true;
      while (fusedOne) {
        fusedOne = false;
        DispatchKind consumerKind = kindOf(consumer);
        for (Value input : consumer.getInputs()) {
          auto producer = input.getDefiningOp<DispatchOp>();
          if (!producer)
            continue;
          if (!feedsOnly(producer, consumer)) {
            // A fill that reads nothing (the zeros matmuls accumulate onto, merged into
            // one dispatch by CSE) is recomputed in each reduction it initializes.
            if (!producer.getInputs().empty() || !kindOf(producer).elementwise ||
                !feedsOnlyInits(producer, consumer))
              continue;
            rewriter.setInsertionPoint(consumer);
            auto copy = cast<DispatchOp>(rewriter.clone(*producer.getOperation()));
            for (auto [from, to] : llvm::zip(producer.getResults(), copy.getResults()))
              consumer->replaceUsesOfWith(from, to);
            if (producer->use_empty()) {
              erased.insert(producer);
              kinds.erase(producer);
              rewriter.eraseOp(producer);
            }
            producer = copy;
          }
          DispatchKind producerKind = kindOf(producer);
          // Unpacking stays fused whatever the size: an f32 copy of the weights costs
          // more than a deeper kernel.
          if (!producerKind.dequantize &&
              producerKind.computeOps + consumerKind.computeOps > maxOps)
            continue;
          if (!producerKind.dequantize &&
              !(producerKind.elementwise &&
                (consumerKind.elementwise || feedsOnlyInits(producer, consumer))))
            continue;
          erased.insert(producer);
          erased.insert(consumer);
          kinds.erase(producer);
          kinds.erase(consumer);
          consumer = fuse(rewriter, producer, consumer);
          kinds[consumer] = {producerKind.elementwise && consumerKind.elementwise,
                             producerKind.dequantize && consumerKind.dequantize,
                             producerKind.computeOps + consumerKind.computeOps};
          fusedOne = true;
          break;
        }
      }
    });
  }
};

} // namespace
