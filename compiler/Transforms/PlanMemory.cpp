// kiln-plan-memory: liveness over the dispatch order and first-fit arena offsets.
#include "compiler/Passes.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/MapVector.h"

namespace kiln {
#define GEN_PASS_DEF_PLANMEMORY
#include "compiler/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// The value whose bytes `value` views: reshapes alias their source.
Value storageRoot(Value value) {
  while (Operation *op = value.getDefiningOp()) {
    if (!isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(op))
      break;
    value = op->getOperand(0);
  }
  return value;
}

FailureOr<int64_t> byteSize(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape() || !tensor.getElementType().isIntOrFloat())
    return failure();
  int64_t elementBytes = (tensor.getElementTypeBitWidth() + 7) / 8;
  return tensor.getNumElements() * elementBytes;
}

struct Interval {
  int64_t start, end, size, offset = -1;
};

struct PlanMemoryPass : kiln::impl::PlanMemoryBase<PlanMemoryPass> {
  using PlanMemoryBase::PlanMemoryBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (!func.getBody().hasOneBlock()) {
      func.emitOpError("needs a single block to plan memory");
      return signalPassFailure();
    }
    Block &block = func.front();
    // Results returned as persistent state (kiln.state) live in their state slot, not
    // in the arena.
    llvm::DenseSet<Value> stateResults;
    auto ret = cast<func::ReturnOp>(block.getTerminator());
    for (auto [i, value] : llvm::enumerate(ret.getOperands()))
      if (func.getResultAttr(i, "kiln.state"))
        stateResults.insert(value);
    llvm::MapVector<Value, Interval> intervals;
    int64_t index = 0;
    int64_t end = static_cast<int64_t>(block.getOperations().size());
    for (Operation &op : block) {
      for (Value operand : op.getOperands()) {
        auto it = intervals.find(storageRoot(operand));
        if (it != intervals.end())
          it->second.end = isa<func::ReturnOp>(op) ? end : std::max(it->second.end, index);
      }
      if (auto dispatch = dyn_cast<DispatchOp>(op)) {
        for (Value result : dispatch.getResults()) {
          if (stateResults.contains(result))
            continue;
          FailureOr<int64_t> size = byteSize(result.getType());
          if (failed(size)) {
            dispatch.emitOpError("has a result of type ")
                << result.getType() << " whose size in bytes is not known";
            return signalPassFailure();
          }
          intervals[result] = {index, index, *size};
        }
      }
      ++index;
    }

    // First fit by offset among the intervals still live. A result starts at its
    // dispatch; inputs read by that dispatch end there too, so `end >= start` keeps
    // them live while the results are placed: outputs never overlap inputs.
    int64_t arenaSize = 0;
    std::vector<Interval *> live;
    for (auto &entry : intervals) {
      Interval &interval = entry.second;
      llvm::erase_if(live, [&](Interval *other) { return other->end < interval.start; });
      llvm::sort(live, [](Interval *a, Interval *b) { return a->offset < b->offset; });
      int64_t offset = 0;
      for (Interval *other : live) {
        if (offset + interval.size <= other->offset)
          break;
        offset = std::max<int64_t>(offset, llvm::alignTo(other->offset + other->size, alignment));
      }
      interval.offset = offset;
      arenaSize = std::max(arenaSize, offset + interval.size);
      live.push_back(&interval);
    }

    int64_t lowerBound = 0;
    for (int64_t at = 0; at <= end; ++at) {
      int64_t liveBytes = 0;
      for (auto &entry : intervals)
        if (entry.second.start <= at && at <= entry.second.end)
          liveBytes += entry.second.size;
      lowerBound = std::max(lowerBound, liveBytes);
    }

    Builder builder(&getContext());
    func.walk([&](DispatchOp dispatch) {
      SmallVector<int64_t> offsets;
      for (Value result : dispatch.getResults())
        offsets.push_back(stateResults.contains(result) ? 0 : intervals[result].offset);
      dispatch->setAttr("kiln.arena_offsets", builder.getDenseI64ArrayAttr(offsets));
    });
    func->setAttr("kiln.arena_size", builder.getI64IntegerAttr(static_cast<int64_t>(llvm::alignTo(arenaSize, alignment))));
    func->setAttr("kiln.arena_lower_bound", builder.getI64IntegerAttr(lowerBound));
  }
};

} // namespace
