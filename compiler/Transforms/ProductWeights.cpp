// The products' float weights and activations, shared by the quantization passes.
#include "compiler/Transforms/ProductWeights.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

#include <cctype>

using namespace mlir;

namespace kiln {

bool isElementwiseWidening(linalg::GenericOp copy) {
  if (copy.getNumDpsInputs() != 1 || copy.getNumDpsInits() != 1 ||
      !llvm::all_of(copy.getIndexingMapsArray(), [](AffineMap m) { return m.isIdentity(); }))
    return false;
  Block &body = copy.getRegion().front();
  auto widen = dyn_cast<arith::ExtFOp>(body.front());
  return widen && &body.front() == &*std::prev(body.end(), 2) &&
         widen.getIn() == body.getArgument(0) &&
         body.getTerminator()->getOperand(0) == widen.getResult();
}

WeightOp weightBehind(Value operand) {
  if (auto weight = operand.getDefiningOp<WeightOp>())
    return weight;
  auto copy = operand.getDefiningOp<linalg::GenericOp>();
  if (!copy || !isElementwiseWidening(copy))
    return nullptr;
  return copy.getDpsInputs()[0].getDefiningOp<WeightOp>();
}

std::optional<ProductWeight> matchProductWeight(linalg::LinalgOp op, OpOperand &operand) {
  WeightOp weight = weightBehind(operand.get());
  if (!weight)
    return std::nullopt;
  auto type = cast<RankedTensorType>(weight.getType());
  Type element = type.getElementType();
  AffineMap map = op.getMatchingIndexingMap(&operand);
  if (!(element.isF32() || element.isF16() || element.isBF16()) || type.getRank() != 2 ||
      map.getNumResults() != 2)
    return std::nullopt;
  auto d0 = dyn_cast<AffineDimExpr>(map.getResult(0));
  auto d1 = dyn_cast<AffineDimExpr>(map.getResult(1));
  if (!d0 || !d1)
    return std::nullopt;
  auto iterators = op.getIteratorTypesArray();
  bool r0 = iterators[d0.getPosition()] == utils::IteratorType::reduction;
  bool r1 = iterators[d1.getPosition()] == utils::IteratorType::reduction;
  if (r0 == r1)
    return std::nullopt;
  return ProductWeight{weight, r0, type.getDimSize(r0 ? 1 : 0), type.getDimSize(r0 ? 0 : 1),
                       (r0 ? d0 : d1).getPosition()};
}

OpOperand *activationOperand(linalg::LinalgOp op, OpOperand &weight, unsigned reductionDim) {
  if (op.getNumDpsInputs() != 2)
    return nullptr;
  OpOperand *other = op.getDpsInputOperand(weight.getOperandNumber() == 0 ? 1 : 0);
  AffineMap map = op.getMatchingIndexingMap(other);
  auto type = dyn_cast<RankedTensorType>(other->get().getType());
  if (!type || !type.getElementType().isF32() || map.getNumResults() == 0 ||
      map.getResults().back() != getAffineDimExpr(reductionDim, op->getContext()))
    return nullptr;
  return other;
}

std::string productInputName(llvm::StringRef weightName) {
  std::string name;
  for (char c : weightName)
    name += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ? c : '_';
  return name + ".input";
}

} // namespace kiln
