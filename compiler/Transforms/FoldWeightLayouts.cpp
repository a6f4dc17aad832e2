// kiln-fold-weight-layouts: transposes of weights happen when the artifact is written.
#include "compiler/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"

namespace kiln {
#define GEN_PASS_DEF_FOLDWEIGHTLAYOUTS
#include "compiler/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

struct FoldWeightLayoutsPass : kiln::impl::FoldWeightLayoutsBase<FoldWeightLayoutsPass> {
  void runOnOperation() override {
    IRRewriter rewriter(&getContext());
    SmallVector<linalg::TransposeOp> transposes;
    getOperation().walk([&](linalg::TransposeOp op) { transposes.push_back(op); });
    for (linalg::TransposeOp transpose : transposes) {
      auto weight = transpose.getInput().getDefiningOp<WeightOp>();
      auto type = dyn_cast<RankedTensorType>(transpose.getResult()[0].getType());
      if (!weight || !type || isa<QuantType>(type.getElementType()))
        continue;
      // Transposing a permuted weight composes the permutations: result dim i is the
      // transpose's input dim p[i], which is the stored tensor's dim q[p[i]].
      SmallVector<int64_t> permutation(transpose.getPermutation());
      if (std::optional<ArrayRef<int64_t>> stored = weight.getPermutation())
        for (int64_t &d : permutation)
          d = (*stored)[d];
      rewriter.setInsertionPoint(transpose);
      auto folded = WeightOp::create(rewriter, transpose.getLoc(), type, weight.getName(),
                                     weight.getSource(), weight.getOffset(),
                                     rewriter.getDenseI64ArrayAttr(permutation),
                                     /*source_scheme=*/nullptr, /*input_scale=*/nullptr);
      rewriter.replaceOp(transpose, folded.getResult());
      if (weight->use_empty())
        rewriter.eraseOp(weight);
    }
  }
};

} // namespace
