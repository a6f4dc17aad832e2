// kiln-fuse-elementwise: chains of elementwise dispatches become one dispatch.
#include "compiler/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
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

/// Replaces `producer` and `consumer` with one dispatch computing both.
void fuse(RewriterBase &rewriter, DispatchOp producer, DispatchOp consumer) {
  llvm::SetVector<Value> inputs;
  inputs.insert(producer.getInputs().begin(), producer.getInputs().end());
  for (Value input : consumer.getInputs())
    if (input.getDefiningOp() != producer.getOperation())
      inputs.insert(input);

  rewriter.setInsertionPoint(consumer);
  auto fused = DispatchOp::create(rewriter, consumer.getLoc(), consumer.getResultTypes(),
                                  inputs.getArrayRef());
  SmallVector<Location> locs;
  for (Value input : inputs)
    locs.push_back(input.getLoc());
  Block *body = rewriter.createBlock(&fused.getBody(), {},
                                     ValueRange(inputs.getArrayRef()).getTypes(), locs);
  auto argFor = [&](Value input) {
    return body->getArgument(static_cast<unsigned>(llvm::find(inputs, input) - inputs.begin()));
  };

  IRMapping mapping;
  for (auto [arg, input] : llvm::zip(producer.getBody().front().getArguments(), producer.getInputs()))
    mapping.map(arg, argFor(input));
  for (Operation &op : producer.getBody().front().without_terminator())
    rewriter.clone(op, mapping);
  for (auto [arg, input] : llvm::zip(consumer.getBody().front().getArguments(), consumer.getInputs())) {
    if (auto result = dyn_cast<OpResult>(input); result && result.getOwner() == producer.getOperation())
      mapping.map(arg, mapping.lookup(producer.getYield().getValues()[result.getResultNumber()]));
    else
      mapping.map(arg, argFor(input));
  }
  for (Operation &op : consumer.getBody().front())
    rewriter.clone(op, mapping);
  rewriter.replaceOp(consumer, fused.getResults());
  rewriter.eraseOp(producer);
}

struct FuseElementwisePass : kiln::impl::FuseElementwiseBase<FuseElementwisePass> {
  void runOnOperation() override {
    IRRewriter rewriter(&getContext());
    bool changed = true;
    while (changed) {
      changed = false;
      getOperation().walk([&](DispatchOp consumer) {
        bool elementwiseConsumer = isElementwise(consumer);
        for (Value input : consumer.getInputs()) {
          auto producer = input.getDefiningOp<DispatchOp>();
          if (!producer || !feedsOnly(producer, consumer))
            continue;
          if (isDequantize(producer) ||
              (isElementwise(producer) &&
               (elementwiseConsumer || feedsOnlyInits(producer, consumer)))) {
            fuse(rewriter, producer, consumer);
            changed = true;
            return WalkResult::interrupt();
          }
        }
        return WalkResult::advance();
      });
    }
  }
};

} // namespace
