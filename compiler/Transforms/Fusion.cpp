// The merge of two dispatches and the legality questions the fusion passes ask.
#include "compiler/Transforms/Fusion.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/BitVector.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SetVector.h"

using namespace mlir;

namespace kiln::fusion {

bool isElementwise(DispatchOp dispatch) {
  bool hasGeneric = false;
  for (Operation &op : dispatch.getBody().front().without_terminator()) {
    if (isa<tensor::EmptyOp, arith::ConstantOp>(op))
      continue;
    auto generic = dyn_cast<linalg::GenericOp>(op);
    if (!generic || generic.getNumReductionLoops() != 0 ||
        !llvm::all_of(generic.getIndexingMapsArray(),
                      [](AffineMap map) { return map.isProjectedPermutation(/*allowZeroInResults=*/true); }))
      return false;
    hasGeneric = true;
  }
  return hasGeneric;
}

bool everyReadOf(DispatchOp producer, DispatchOp consumer,
                 llvm::function_ref<bool(OpOperand &)> read) {
  for (auto [arg, input] :
       llvm::zip(consumer.getBody().front().getArguments(), consumer.getInputs())) {
    if (input.getDefiningOp() != producer.getOperation())
      continue;
    for (OpOperand &use : arg.getUses())
      if (!read(use))
        return false;
  }
  return true;
}

bool feedsOnlyInits(DispatchOp producer, DispatchOp consumer) {
  return everyReadOf(producer, consumer, [](OpOperand &use) {
    auto generic = dyn_cast<linalg::GenericOp>(use.getOwner());
    return generic && generic.isDpsInit(&use);
  });
}

bool feedsOnly(DispatchOp producer, DispatchOp consumer) {
  for (Value result : producer.getResults())
    for (Operation *user : result.getUsers())
      if (user != consumer.getOperation())
        return false;
  return true;
}

void forEachDispatch(func::FuncOp function,
                     llvm::function_ref<void(DispatchOp, llvm::DenseSet<Operation *> &)> visit) {
  SmallVector<DispatchOp> dispatches;
  function.walk([&](DispatchOp dispatch) { dispatches.push_back(dispatch); });
  llvm::DenseSet<Operation *> erased;
  for (DispatchOp dispatch : dispatches)
    if (!erased.contains(dispatch))
      visit(dispatch, erased);
}

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

} // namespace kiln::fusion
