// kiln-return-product-inputs: the activations of every product with a float weight
// become extra function results, so a float artifact run on calibration inputs
// yields what AWQ measures.
#include "compiler/Passes.h"
#include "compiler/Transforms/ProductWeights.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringMap.h"

namespace kiln {
#define GEN_PASS_DEF_RETURNPRODUCTINPUTS
#include "compiler/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

struct ReturnProductInputsPass
    : kiln::impl::ReturnProductInputsBase<ReturnProductInputsPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    // Weight name -> the activations of its product (null once a second product
    // reads the same weight: whose activations AWQ should use is then ambiguous).
    llvm::MapVector<StringRef, Value> inputs;
    llvm::StringMap<unsigned> reads;
    func.walk([&](linalg::LinalgOp op) {
      if (!linalg::isaContractionOpInterface(op))
        return;
      for (OpOperand *operand : op.getDpsInputOperands()) {
        std::optional<ProductWeight> product = matchProductWeight(op, *operand);
        if (!product)
          continue;
        StringRef name = product->weight.getName();
        OpOperand *activations = activationOperand(op, *operand, product->reductionDim);
        if (++reads[name] == 1 && activations)
          inputs[name] = activations->get();
      }
    });
    auto ret = cast<func::ReturnOp>(func.getBody().back().getTerminator());
    OpBuilder b(ret);
    for (auto &[name, value] : inputs) {
      if (reads[name] != 1)
        continue;
      unsigned index = func.getNumResults();
      if (failed(func.insertResult(index, value.getType(),
                                   b.getDictionaryAttr(b.getNamedAttr(
                                       "kiln.name", b.getStringAttr(productInputName(name)))))))
        return signalPassFailure();
      ret.getOperandsMutable().append(value);
    }
  }
};

} // namespace
