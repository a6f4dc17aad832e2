// kiln-plan-memory: liveness over the dispatch order, in-place reuse of dying inputs,
// and arena offsets from the smaller of two greedy placements.
#include "compiler/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"

#include <numeric>

namespace kiln {
#define GEN_PASS_DEF_PLANMEMORY
#include "compiler/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

// Steps of one placement search (each scans the intervals placed before it). The
// models the tests compile that the search helps reach their target within a few
// hundred; the budget bounds the time where no plan exists (NP-hard in general).
constexpr int64_t kSearchSteps = 20000;

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

/// Whether `dispatch`'s kernel reads input `input` only at the points where it writes
/// result `result`, each just before writing it: then the result may take the input's
/// storage. Holds when the input flows, through linalg.generic ops without reduction
/// loops that read it and write their result through identity maps, only into that
/// result, of the same shape and element size (so a point is at the same bytes in
/// both). A kernel with a reduction anywhere is never in place: its output may be
/// tiled with tails that shift inward and compute some points twice (the Halide GEMM
/// schedule), and the second time would read the point already overwritten. Any op
/// this does not know (named kiln ops, reshapes, slices) makes the answer no.
bool readsOnlyWhereWritten(DispatchOp dispatch, unsigned input, unsigned result) {
  Block &body = dispatch.getBody().front();
  auto argType = cast<RankedTensorType>(body.getArgument(input).getType());
  auto resultType = cast<RankedTensorType>(dispatch.getResult(result).getType());
  if (argType.getShape() != resultType.getShape() ||
      argType.getElementTypeBitWidth() != resultType.getElementTypeBitWidth())
    return false;
  for (Operation &op : body) {
    if (isa<tensor::EmptyOp, arith::ConstantOp, YieldOp>(op))
      continue;
    auto generic = dyn_cast<linalg::GenericOp>(op);
    if (!generic || generic.getNumReductionLoops() != 0)
      return false;
  }
  SmallVector<Value> worklist{body.getArgument(input)};
  llvm::DenseSet<Value> seen;
  while (!worklist.empty()) {
    Value value = worklist.pop_back_val();
    if (!seen.insert(value).second)
      continue;
    for (OpOperand &use : value.getUses()) {
      if (isa<YieldOp>(use.getOwner())) {
        if (use.getOperandNumber() != result)
          return false;
        continue;
      }
      // A user nested in a payload (tensor.extract) reads anywhere.
      auto generic = dyn_cast<linalg::GenericOp>(use.getOwner());
      if (!generic || !generic.getMatchingIndexingMap(&use).isIdentity())
        return false;
      for (OpOperand &init : generic.getDpsInitsMutable())
        if (!generic.getMatchingIndexingMap(&init).isIdentity())
          return false;
      llvm::append_range(worklist, generic->getResults());
    }
  }
  return true;
}

/// Bytes that live from dispatch `start` to dispatch `end` (indices in the block,
/// inclusive: a dispatch's inputs are live while it writes its results) at `offset`.
struct Interval {
  int64_t start, end, size, offset = -1;
  bool overlapsInTime(const Interval &other) const {
    return start <= other.end && other.start <= end;
  }
};

/// The arena bytes `intervals` take where they are placed.
int64_t arenaTop(const std::vector<Interval> &intervals, int64_t alignment) {
  int64_t top = 0;
  for (const Interval &interval : intervals)
    top = std::max(top, interval.offset + interval.size);
  return static_cast<int64_t>(llvm::alignTo(top, alignment));
}

/// Places `intervals` one by one in `order`, each at the lowest `alignment`-aligned
/// offset where it overlaps no interval already placed that is live at the same time;
/// returns the arena size.
int64_t placeGreedily(std::vector<Interval> &intervals, ArrayRef<unsigned> order,
                      int64_t alignment) {
  for (Interval &interval : intervals)
    interval.offset = -1;
  std::vector<const Interval *> conflicts;
  for (unsigned index : order) {
    Interval &interval = intervals[index];
    conflicts.clear();
    for (const Interval &other : intervals)
      if (other.offset >= 0 && other.overlapsInTime(interval))
        conflicts.push_back(&other);
    llvm::sort(conflicts, [](const Interval *a, const Interval *b) { return a->offset < b->offset; });
    int64_t offset = 0;
    for (const Interval *other : conflicts) {
      if (offset + interval.size <= other->offset)
        break;
      offset = std::max<int64_t>(offset, llvm::alignTo(other->offset + other->size, alignment));
    }
    interval.offset = offset;
  }
  return arenaTop(intervals, alignment);
}

/// A depth-first search for offsets that fit `intervals` into `capacity` bytes: taken
/// in `order` (program order, or its reverse: the problem is symmetric in time), each
/// goes to the bottom or the top of a gap left by the intervals placed before it that
/// live at the same time, lowest first, and a dead end backtracks. Greedy placements
/// commit to an offset without knowing which neighbours die first; on a transformer
/// block whose buffers have sizes that are not multiples of each other (a Gemma block:
/// 2688, 3584, 4480 and 5376 bytes), their fragments cost 13% over the largest live set,
/// which the search closes. `budget` bounds its steps.
class PlacementSearch {
public:
  PlacementSearch(std::vector<Interval> &intervals, ArrayRef<unsigned> order,
                  int64_t alignment, int64_t budget)
      : intervals(intervals), order(order), alignment(alignment), budget(budget) {}

  bool fitsWithin(int64_t capacity) {
    this->capacity = capacity;
    return place(0);
  }

private:
  bool place(size_t k) {
    if (k == order.size())
      return true;
    if (budget-- <= 0)
      return false;
    Interval &interval = intervals[order[k]];
    SmallVector<std::pair<int64_t, int64_t>> conflicts;
    for (unsigned placed : order.take_front(k))
      if (intervals[placed].overlapsInTime(interval))
        conflicts.push_back({intervals[placed].offset, intervals[placed].size});
    llvm::sort(conflicts);
    SmallVector<int64_t> candidates;
    int64_t bottom = 0;
    auto gap = [&](int64_t top) {
      if (top - bottom < interval.size)
        return;
      candidates.push_back(bottom);
      int64_t high = llvm::alignDown(top - interval.size, alignment);
      if (high > bottom)
        candidates.push_back(high);
    };
    for (auto [offset, size] : conflicts) {
      gap(offset);
      bottom = std::max<int64_t>(bottom, llvm::alignTo(offset + size, alignment));
    }
    gap(capacity);
    for (int64_t offset : candidates) {
      interval.offset = offset;
      if (place(k + 1))
        return true;
      if (budget <= 0)
        break;
    }
    return false;
  }

  std::vector<Interval> &intervals;
  ArrayRef<unsigned> order;
  int64_t alignment, budget, capacity = 0;
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

    // Liveness of every arena value: from its dispatch to its last reader, to the end
    // when returned.
    llvm::DenseMap<Value, Interval> lifetimes;
    llvm::DenseMap<Operation *, int64_t> indexOf;
    int64_t index = 0;
    int64_t end = static_cast<int64_t>(block.getOperations().size());
    for (Operation &op : block) {
      indexOf[&op] = index;
      for (Value operand : op.getOperands()) {
        auto it = lifetimes.find(storageRoot(operand));
        if (it != lifetimes.end())
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
          lifetimes[result] = {index, index, *size};
        }
      }
      ++index;
    }

    // Storage: one per value, except that a result may take the storage of an input
    // whose last reader is its dispatch, when the kernel reads that input only where
    // it writes the result. Function arguments, weights and state are never arena
    // values, so never given away.
    std::vector<Interval> storage;
    llvm::DenseMap<Value, unsigned> storageOf;
    int64_t inPlace = 0;
    for (Operation &op : block) {
      auto dispatch = dyn_cast<DispatchOp>(op);
      if (!dispatch)
        continue;
      llvm::DenseSet<Value> given;
      for (auto [r, result] : llvm::enumerate(dispatch.getResults())) {
        auto lifetime = lifetimes.find(result);
        if (lifetime == lifetimes.end())
          continue;
        std::optional<unsigned> taken;
        for (auto [i, input] : llvm::enumerate(dispatch.getInputs())) {
          Value root = storageRoot(input);
          auto source = lifetimes.find(root);
          if (source == lifetimes.end() || source->second.end != indexOf[dispatch] ||
              source->second.size != lifetime->second.size || given.contains(root))
            continue;
          // Another view of the same bytes may be read at other points.
          if (llvm::count_if(dispatch.getInputs(), [&](Value other) {
                return storageRoot(other) == root;
              }) != 1)
            continue;
          if (!readsOnlyWhereWritten(dispatch, i, r))
            continue;
          given.insert(root);
          taken = storageOf[root];
          break;
        }
        if (taken) {
          storage[*taken].end = std::max(storage[*taken].end, lifetime->second.end);
          storageOf[result] = *taken;
          ++inPlace;
        } else {
          storageOf[result] = storage.size();
          storage.push_back(lifetime->second);
        }
      }
    }

    // Two greedy placements, the smaller kept: first fit in program order, and by size
    // (largest first, then the earliest), which packs the few large buffers of a
    // transformer (logits, the feed-forward's hidden layer) before small ones fragment
    // the arena.
    SmallVector<unsigned> inOrder(storage.size());
    std::iota(inOrder.begin(), inOrder.end(), 0u);
    SmallVector<unsigned> bySize(inOrder);
    llvm::sort(bySize, [&](unsigned a, unsigned b) {
      return std::make_pair(-storage[a].size, a) < std::make_pair(-storage[b].size, b);
    });
    std::vector<Interval> inOrderPlan = storage;
    int64_t inOrderSize = placeGreedily(inOrderPlan, inOrder, alignment);
    int64_t arenaSize = placeGreedily(storage, bySize, alignment);
    if (inOrderSize <= arenaSize) {
      storage = std::move(inOrderPlan);
      arenaSize = inOrderSize;
    }

    // The lower bound of any placement: the most bytes live at once, each buffer
    // rounded up to the alignment (the arena must place it so), a result in place and
    // the input whose storage it takes counted once.
    std::vector<int64_t> delta(end + 2, 0);
    for (const Interval &interval : storage) {
      int64_t bytes = static_cast<int64_t>(llvm::alignTo(interval.size, alignment));
      delta[interval.start] += bytes;
      delta[interval.end + 1] -= bytes;
    }
    int64_t lowerBound = 0, live = 0;
    for (int64_t change : delta)
      lowerBound = std::max(lowerBound, live += change);

    // Greedy plans above the bound: search for one at it, or within 5% or 10% of it,
    // forward and backward in time.
    SmallVector<unsigned> backward(inOrder);
    llvm::sort(backward, [&](unsigned a, unsigned b) {
      return std::make_pair(-storage[a].end, -storage[a].start) <
             std::make_pair(-storage[b].end, -storage[b].start);
    });
    for (int64_t percent : {100, 105, 110}) {
      int64_t capacity = llvm::alignDown(lowerBound * percent / 100, int64_t(alignment));
      if (capacity >= arenaSize)
        break;
      std::vector<Interval> searched = storage;
      if (PlacementSearch(searched, inOrder, alignment, kSearchSteps).fitsWithin(capacity) ||
          PlacementSearch(searched, backward, alignment, kSearchSteps).fitsWithin(capacity)) {
        storage = std::move(searched);
        arenaSize = arenaTop(storage, alignment);
        break;
      }
    }

    Builder builder(&getContext());
    func.walk([&](DispatchOp dispatch) {
      SmallVector<int64_t> offsets;
      for (Value result : dispatch.getResults())
        offsets.push_back(stateResults.contains(result) ? 0 : storage[storageOf[result]].offset);
      dispatch->setAttr("kiln.arena_offsets", builder.getDenseI64ArrayAttr(offsets));
    });
    func->setAttr("kiln.arena_size", builder.getI64IntegerAttr(arenaSize));
    func->setAttr("kiln.arena_lower_bound", builder.getI64IntegerAttr(lowerBound));
    func->setAttr("kiln.arena_in_place", builder.getI64IntegerAttr(inPlace));
  }
};

} // namespace
