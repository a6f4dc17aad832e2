// kiln-quantize-weights: float weights of products and embedding tables packed into
// q8_0 (int8) or q4_0 (int4) blocks, the artifact writer doing the packing.
#include "compiler/Passes.h"
#include "compiler/Transforms/ProductWeights.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

#include "llvm/ADT/StringExtras.h"

namespace kiln {
#define GEN_PASS_DEF_QUANTIZEWEIGHTS
#include "compiler/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// The `source_scheme` name of a float element type the writer can pack from.
std::optional<StringRef> floatSourceName(Type element) {
  if (element.isF32())
    return StringRef("f32");
  if (element.isF16())
    return StringRef("f16");
  if (element.isBF16())
    return StringRef("bf16");
  return std::nullopt;
}

/// Whether `op`'s result reaches a function result through shape and elementwise
/// ops only: an output head (an LM's logits, a classifier's last layer).
bool feedsOutputOnly(Operation *op) {
  SmallVector<Operation *> work = {op};
  llvm::SmallPtrSet<Operation *, 8> seen;
  while (!work.empty()) {
    Operation *current = work.pop_back_val();
    if (!seen.insert(current).second)
      continue;
    for (Operation *user : current->getUsers()) {
      if (isa<func::ReturnOp>(user))
        return true;
      auto generic = dyn_cast<linalg::GenericOp>(user);
      bool elementwise = generic && generic.getNumReductionLoops() == 0;
      if (elementwise || isa<tensor::CollapseShapeOp, tensor::ExpandShapeOp, tensor::ExtractSliceOp,
                             tensor::ReshapeOp, linalg::TransposeOp>(user))
        work.push_back(user);
    }
  }
  return false;
}

struct QuantizeWeightsPass : kiln::impl::QuantizeWeightsBase<QuantizeWeightsPass> {
  using QuantizeWeightsBase::QuantizeWeightsBase;

  QuantScheme packed = QuantScheme::q8_0;
  bool keepEmbeddings = false, keepHead = false;
  SmallVector<std::string> keepNames;

  LogicalResult parseOptions() {
    if (scheme == "int8")
      packed = QuantScheme::q8_0;
    else if (scheme == "int4")
      packed = QuantScheme::q4_0;
    else if (scheme == "int4-zp")
      packed = QuantScheme::q4_1;
    else
      return getOperation().emitError("kiln-quantize-weights: unknown scheme '")
             << scheme << "' (expected int8, int4 or int4-zp)";
    SmallVector<StringRef> items;
    StringRef(keepFloat).split(items, ',', -1, /*KeepEmpty=*/false);
    for (StringRef item : items) {
      item = item.trim();
      if (item == "embeddings")
        keepEmbeddings = true;
      else if (item == "head")
        keepHead = true;
      else if (item != "none")
        keepNames.push_back(item.str());
    }
    return success();
  }

  bool keptByName(WeightOp weight) const {
    return llvm::any_of(keepNames, [&](const std::string &name) {
      return weight.getName().contains(name);
    });
  }

  /// A packed copy of `weight` of logical shape `shape`, whose element (i, j) is the
  /// stored element at `permutation` (kiln.weight's convention).
  WeightOp packedWeight(OpBuilder &b, WeightOp weight, ArrayRef<int64_t> shape,
                        ArrayRef<int64_t> permutation, StringRef source) {
    bool identity = llvm::equal(permutation, llvm::seq<int64_t>(0, permutation.size()));
    auto type = RankedTensorType::get(shape, QuantType::get(b.getContext(), packed, 0));
    return WeightOp::create(b, weight.getLoc(), type, weight.getName(), weight.getSource(),
                            weight.getOffset(),
                            identity ? nullptr : b.getDenseI64ArrayAttr(permutation),
                            b.getStringAttr(source), /*input_scale=*/nullptr);
  }

  SmallVector<int64_t> storedPermutation(WeightOp weight) {
    if (std::optional<ArrayRef<int64_t>> p = weight.getPermutation())
      return SmallVector<int64_t>(*p);
    return {0, 1};
  }

  /// Rewrites one operand of a contraction; false when it stays float.
  bool quantizeOperand(OpBuilder &b, linalg::LinalgOp op, OpOperand &operand) {
    std::optional<ProductWeight> product = matchProductWeight(op, operand);
    if (!product || keptByName(product->weight))
      return false;
    WeightOp weight = product->weight;
    std::optional<StringRef> source =
        floatSourceName(cast<RankedTensorType>(weight.getType()).getElementType());
    AffineMap map = op.getMatchingIndexingMap(&operand);
    bool r0 = product->reductionFirst;
    int64_t k = product->k, n = product->n;
    // Packed along K (the reduction): [N, K].
    if (k % 32 != 0 || (keepHead && feedsOutputOnly(op)))
      return false;
    SmallVector<int64_t> permutation = storedPermutation(weight);
    if (r0)
      std::swap(permutation[0], permutation[1]);
    b.setInsertionPoint(op);
    WeightOp quantized = packedWeight(b, weight, {n, k}, permutation, *source);
    Value dequantized = DequantizeOp::create(b, weight.getLoc(), quantized, Value(), Value());
    operand.set(dequantized);
    if (r0) {
      SmallVector<AffineMap> maps = op.getIndexingMapsArray();
      maps[operand.getOperandNumber()] =
          AffineMap::get(map.getNumDims(), 0, {map.getResult(1), map.getResult(0)},
                         op->getContext());
      op->setAttr("indexing_maps", b.getAffineMapArrayAttr(maps));
    }
    return true;
  }

  void quantizeTable(OpBuilder &b, GatherOp gather) {
    auto weight = gather.getTable().getDefiningOp<WeightOp>();
    if (!weight || keepEmbeddings || gather.getAxis() != 0 || keptByName(weight))
      return;
    auto type = cast<RankedTensorType>(weight.getType());
    // Only f32 tables: the gather's result stays f32, so its readers are unchanged.
    if (!type.getElementType().isF32() || type.getRank() != 2 || type.getDimSize(1) % 32 != 0)
      return;
    b.setInsertionPoint(gather);
    WeightOp quantized =
        packedWeight(b, weight, type.getShape(), storedPermutation(weight), "f32");
    gather.getTableMutable().set(quantized);
  }

  void runOnOperation() override {
    if (failed(parseOptions()))
      return signalPassFailure();
    OpBuilder b(&getContext());
    SmallVector<linalg::LinalgOp> contractions;
    SmallVector<GatherOp> gathers;
    getOperation().walk([&](Operation *op) {
      if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
          linalgOp && linalg::isaContractionOpInterface(linalgOp))
        contractions.push_back(linalgOp);
      else if (auto gather = dyn_cast<GatherOp>(op))
        gathers.push_back(gather);
    });
    SmallVector<Operation *> maybeDead;
    for (linalg::LinalgOp op : contractions)
      for (OpOperand *operand : op.getDpsInputOperands()) {
        Operation *previous = operand->get().getDefiningOp();
        if (quantizeOperand(b, op, *operand))
          maybeDead.push_back(previous);
      }
    for (GatherOp gather : gathers) {
      Operation *previous = gather.getTable().getDefiningOp();
      quantizeTable(b, gather);
      if (gather.getTable().getDefiningOp() != previous)
        maybeDead.push_back(previous);
    }
    // Widening copies, then the float weights nothing reads any more.
    for (size_t i = 0; i < maybeDead.size(); ++i) {
      Operation *op = maybeDead[i];
      if (!op || !op->use_empty())
        continue;
      for (Value input : op->getOperands())
        if (Operation *producer = input.getDefiningOp())
          maybeDead.push_back(producer);
      op->erase();
      maybeDead[i] = nullptr;
      for (size_t j = i + 1; j < maybeDead.size(); ++j)
        if (maybeDead[j] == op)
          maybeDead[j] = nullptr;
    }
  }
};

} // namespace
