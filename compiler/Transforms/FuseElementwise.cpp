// kiln-fuse-elementwise: chains of elementwise dispatches become one dispatch.
#include "compiler/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/BitVector.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"

namespace kiln {
#define GEN_PASS_DEF_FUSEELEMENTWISE
#include "compiler/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// A dispatch computing only pure elementwise generics (plus cost-free producers).
bool isElementwise(DispatchOp dispatch) {
  bool hasGeneric = false;
  for (Operation &op : dispatch.getBody().front().without_terminator()) {
    if (isa<tensor::EmptyOp, arith::ConstantOp>(op))
      continue;
    auto generic = dyn_cast<linalg::GenericOp>(op);
    if (!generic || generic.getNumReductionLoops() != 0 ||
        !llvm::all_of(generic.getIndexingMapsArray(),
                      [](AffineMap map) { return map.isProjectedPermutation(); }))
      return false;
    hasGeneric = true;
  }
  return hasGeneric;
}

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

/// Every read of `producer`'s results inside `consumer` is the initial value of a
/// generic's output: read once per output point, so inlining costs nothing extra.
bool feedsOnlyInits(DispatchOp producer, DispatchOp consumer) {
  for (auto [arg, input] :
       llvm::zip(consumer.getBody().front().getArguments(), consumer.getInputs())) {
    if (input.getDefiningOp() != producer.getOperation())
      continue;
    for (OpOperand &use : arg.getUses()) {
      auto generic = dyn_cast<linalg::GenericOp>(use.getOwner());
      if (!generic || !generic.isDpsInit(&use))
        return false;
    }
  }
  return true;
}

/// Every result of `producer` is read only by `consumer`.
bool feedsOnly(DispatchOp producer, DispatchOp consumer) {
  for (Value result : producer.getResults())
    for (Operation *user : result.getUsers())
      if (user != consumer.getOperation())
        return false;
  return true;
}

/// Replaces `producer` and `consumer` with one dispatch computing both, at the
/// consumer. The producer's body is moved, not copied, and grows by the consumer's ops:
/// fusing a chain of n dispatches costs O(n), not the O(n^2) of cloning the growing
/// body at every step.
DispatchOp fuse(RewriterBase &rewriter, DispatchOp producer, DispatchOp consumer) {
  llvm::SetVector<Value> inputs;
  inputs.insert(producer.getInputs().begin(), producer.getInputs().end());
  for (Value input : consumer.getInputs())
    if (input.getDefiningOp() != producer.getOperation())
      inputs.insert(input);

  rewriter.setInsertionPoint(consumer);
  auto fused = DispatchOp::create(rewriter, consumer.getLoc(), consumer.getResultTypes(),
                                  inputs.getArrayRef());
  fused.getBody().takeBody(producer.getBody());
  Block *body = &fused.getBody().front();
  // The arguments must match `inputs` one to one: a repeated input of the producer
  // reads the argument of its first occurrence, and the consumer's new inputs follow.
  llvm::DenseMap<Value, unsigned> firstArg;
  llvm::BitVector repeated(body->getNumArguments());
  for (auto [i, input] : llvm::enumerate(producer.getInputs())) {
    auto [it, inserted] = firstArg.try_emplace(input, i);
    if (!inserted) {
      rewriter.replaceAllUsesWith(body->getArgument(i), body->getArgument(it->second));
      repeated.set(i);
    }
  }
  body->eraseArguments(repeated);
  for (Value input : inputs.getArrayRef().drop_front(body->getNumArguments()))
    body->addArgument(input.getType(), input.getLoc());
  llvm::DenseMap<Value, unsigned> position;
  for (auto [i, input] : llvm::enumerate(inputs))
    position[input] = i;
  auto argFor = [&](Value input) -> Value { return body->getArgument(position.lookup(input)); };

  Operation *yield = body->getTerminator();
  SmallVector<Value> consumerArgs;
  for (Value input : consumer.getInputs()) {
    auto result = dyn_cast<OpResult>(input);
    consumerArgs.push_back(result && result.getOwner() == producer.getOperation()
                               ? yield->getOperand(result.getResultNumber())
                               : argFor(input));
  }
  rewriter.inlineBlockBefore(&consumer.getBody().front(), body, body->end(), consumerArgs);
  rewriter.eraseOp(yield);
  rewriter.replaceOp(consumer, fused.getResults());
  rewriter.eraseOp(producer);
  return fused;
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
  bool dequantize;
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
        it->second = {isElementwise(dispatch), isDequantize(dispatch),
                      countComputeOps(dispatch)};
      return it->second;
    };
    // Producers precede their consumers, so one pass in program order, fusing each
    // consumer with its producers until none is left, reaches the fixed point: a fusion
    // never changes what an earlier consumer or its producers could fuse with.
    SmallVector<DispatchOp> dispatches;
    getOperation().walk([&](DispatchOp dispatch) { dispatches.push_back(dispatch); });
    llvm::DenseSet<Operation *> erased;
    for (DispatchOp consumer : dispatches) {
      if (erased.contains(consumer))
        continue;
      bool fusedOne = true;
      while (fusedOne) {
        fusedOne = false;
        DispatchKind consumerKind = kindOf(consumer);
        for (Value input : consumer.getInputs()) {
          auto producer = input.getDefiningOp<DispatchOp>();
          if (!producer || !feedsOnly(producer, consumer))
            continue;
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
    }
  }
};

} // namespace
