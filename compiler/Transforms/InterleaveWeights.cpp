// kiln-interleave-weights: q4_0 and q8_0 weights stored with the blocks of 16 rows
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
      // Only what kiln.dequantize reads: its kernels decode any layout; a quantized
      // gather's rows stay whole rows of ggml blocks.
      std::optional<QuantScheme> interleaved =
          quant ? QuantType::interleaved(quant.getScheme()) : std::nullopt;
      // A weight converted from packed bytes is already interleaved; one packed from
      // floats (kiln-quantize-weights) is packed straight into the interleaved layout.
      std::optional<StringRef> source = weight.getSourceScheme();
      if (!interleaved || type.getRank() != 2 ||
          type.getShape()[0] % 16 != 0 || (source && symbolizeQuantScheme(*source)) ||
          !llvm::all_of(weight->getUsers(), [](Operation *user) { return isa<DequantizeOp>(user); }))
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
