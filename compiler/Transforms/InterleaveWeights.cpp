// kiln-interleave-weights: q4_0, q8_0, q5_0, q4_k and q6_k weights stored with the blocks of 16 rows
// interleaved.
#include "compiler/Passes.h"

#include "mlir/IR/PatternMatch.h"

namespace kiln {
#define GEN_PASS_DEF_INTERLEAVEWEIGHTS
#include "compiler/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

struct InterleaveWeightsPass : kiln::impl::InterleaveWeightsBase<InterleaveWeightsPass> {
  void runOnOperation() override {
    IRRewriter rewriter(&getContext());
    SmallVector<WeightOp> weights;
    getOperation().walk([&](WeightOp weight) { weights.push_back(weight); });
    for (WeightOp weight : weights) {
      auto type = cast<RankedTensorType>(weight.getType());
      auto quant = dyn_cast<QuantType>(type.getElementType());
      // Only what kiln.dequantize and kiln.gather read: their kernels decode any layout
      // (a gathered row of an interleaved table is read 16 rows' blocks at a time,
      // which costs little for the rows of a few tokens, while the output projection
      // that shares a tied embedding table runs 1.5x faster on the interleaved layout).
      std::optional<QuantScheme> interleaved =
          quant ? QuantType::interleaved(quant.getScheme()) : std::nullopt;
      // A weight converted from packed bytes is already interleaved; one packed from
      // floats (kiln-quantize-weights) is packed straight into the interleaved layout.
      std::optional<StringRef> source = weight.getSourceScheme();
      if (!interleaved || type.getRank() != 2 ||
          type.getShape()[0] % 16 != 0 || (source && symbolizeQuantScheme(*source)) ||
          !llvm::all_of(weight->getUsers(), [](Operation *user) {
            return isa<DequantizeOp, GatherOp>(user);
          }))
        continue;
      auto stored = RankedTensorType::get(type.getShape(),
                                          QuantType::get(&getContext(), *interleaved, 0));
      rewriter.modifyOpInPlace(weight, [&] {
        weight.getResult().setType(stored);
        if (!source)
          weight.setSourceScheme(stringifyQuantScheme(quant.getScheme()));
      });
    }
  }
};

} // namespace
