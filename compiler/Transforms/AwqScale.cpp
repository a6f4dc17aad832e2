// kiln-awq-scale: activation-aware scaling (AWQ) of the weights kiln-quantize-weights
// packed, from calibration activations that kiln-return-product-inputs exposed.
#include "compiler/AwqSearch.h"
#include "compiler/Passes.h"
#include "compiler/Transforms/ProductWeights.h"
#include "compiler/WeightQuantizer.h"

#include "Npy.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

namespace kiln {
#define GEN_PASS_DEF_AWQSCALE
#include "compiler/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// Activation rows the search uses at most (evenly strided over the calibration
/// rows): its cost is rows x N x K per product and alpha, and the mean |x| and the
/// error it ranks alphas by are averages that a thousand rows already settle.
constexpr int64_t kMaxRows = 1024;

/// A product reading a float weight packed along K through kiln.dequantize.
struct PackedProduct {
  WeightOp weight;
  OpOperand *activations;
};

std::optional<PackedProduct> matchPackedProduct(linalg::LinalgOp op, OpOperand &operand) {
  auto dequantize = operand.get().getDefiningOp<DequantizeOp>();
  if (!dequantize || dequantize.getScales())
    return std::nullopt;
  auto weight = dequantize.getInput().getDefiningOp<WeightOp>();
  if (!weight || !weight.getSourceScheme() || !symbolizeFloatSource(*weight.getSourceScheme()))
    return std::nullopt;
  auto type = cast<RankedTensorType>(weight.getType());
  auto quant = dyn_cast<QuantType>(type.getElementType());
  AffineMap map = op.getMatchingIndexingMap(&operand);
  if (!quant || !canQuantizeInto(quant.getScheme()) || type.getRank() != 2 ||
      map.getNumResults() != 2)
    return std::nullopt;
  auto k = dyn_cast<AffineDimExpr>(map.getResult(1));
  if (!k || op.getIteratorTypesArray()[k.getPosition()] != utils::IteratorType::reduction)
    return std::nullopt;
  OpOperand *activations = activationOperand(op, operand, k.getPosition());
  if (!activations)
    return std::nullopt;
  return PackedProduct{weight, activations};
}

struct AwqScalePass : kiln::impl::AwqScaleBase<AwqScalePass> {
  using AwqScaleBase::AwqScaleBase;

  /// The calibration activations of `weight`'s product, [rows, K], rows of every
  /// directory concatenated then strided down to kMaxRows.
  FailureOr<FloatMatrix> readActivations(WeightOp weight, int64_t k) {
    SmallVector<StringRef> directories;
    StringRef(activations).split(directories, ',', -1, /*KeepEmpty=*/false);
    if (directories.empty())
      return weight.emitError("kiln-awq-scale: no activations directories given");
    FloatMatrix all;
    all.cols = k;
    for (StringRef directory : directories) {
      llvm::SmallString<256> path(directory);
      llvm::sys::path::append(path, productInputName(weight.getName()) + ".npy");
      tools::Expected<tools::NpyArray> array = tools::readNpyFile(path.str().str());
      if (!array)
        return weight.emitError("kiln-awq-scale: no calibration activations for '")
               << weight.getName() << "': " << array.error().message;
      if (array->dtype != KILN_DTYPE_F32 || array->shape.empty() || array->shape.back() != k)
        return weight.emitError("kiln-awq-scale: '")
               << path << "' should hold f32 rows of " << k << " values (the weight's K)";
      size_t count = array->data.size() / sizeof(float);
      size_t at = all.values.size();
      all.values.resize(at + count);
      std::memcpy(all.values.data() + at, array->data.data(), count * sizeof(float));
    }
    all.rows = static_cast<int64_t>(all.values.size()) / k;
    if (all.rows <= kMaxRows)
      return all;
    FloatMatrix strided;
    strided.rows = kMaxRows;
    strided.cols = k;
    for (int64_t r = 0; r < kMaxRows; ++r) {
      const float *row = all.values.data() + (r * all.rows / kMaxRows) * k;
      strided.values.insert(strided.values.end(), row, row + k);
    }
    return strided;
  }

  /// The float values of a packed weight as the writer will see them: [N, K] after
  /// its permutation, widened to f32.
  FailureOr<FloatMatrix> readWeight(WeightOp weight) {
    auto type = cast<RankedTensorType>(weight.getType());
    FloatSource source = *symbolizeFloatSource(*weight.getSourceScheme());
    FloatMatrix w;
    w.rows = type.getDimSize(0);
    w.cols = type.getDimSize(1);
    llvm::SmallString<256> path(weight.getSource());
    if (llvm::sys::path::is_relative(path) && !modelDir.empty()) {
      path = modelDir;
      llvm::sys::path::append(path, weight.getSource());
    }
    uint64_t size = static_cast<uint64_t>(w.rows * w.cols * floatSourceBytes(source));
    uint64_t offset = weight.getOffset();
    auto file = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
    if (!file)
      return weight.emitError("kiln-awq-scale: cannot read '")
             << weight.getName() << "' from '" << path << "': " << file.getError().message();
    uint64_t available = (*file)->getBufferSize();
    if (offset > available || size > available - offset)
      return weight.emitError("kiln-awq-scale: cannot read '")
             << weight.getName() << "' from '" << path << "': it needs bytes [" << offset
             << ", " << offset + size << ") of a file of " << available << " bytes";
    std::vector<float> stored =
        widenToF32((*file)->getBufferStart() + offset, w.rows * w.cols, source);
    std::optional<ArrayRef<int64_t>> permutation = weight.getPermutation();
    if (!permutation || (*permutation)[0] == 0) {
      w.values = std::move(stored);
      return w;
    }
    // Stored [K, N] (an ONNX initializer): transposed into [N, K].
    w.values.resize(stored.size());
    for (int64_t n = 0; n < w.rows; ++n)
      for (int64_t j = 0; j < w.cols; ++j)
        w.values[n * w.cols + j] = stored[j * w.rows + n];
    return w;
  }

  static void multiplyInputScale(WeightOp weight, ArrayRef<float> factors) {
    SmallVector<float> scale(factors);
    if (std::optional<ArrayRef<float>> existing = weight.getInputScale())
      for (size_t j = 0; j < scale.size(); ++j)
        scale[j] *= (*existing)[j];
    weight.setInputScaleAttr(DenseF32ArrayAttr::get(weight.getContext(), scale));
  }

  /// The f32 RMSNorm scale that produces `x` and may absorb 1/s exactly: read by that
  /// norm only, and `x` read by the group's products only.
  static WeightOp foldableNormScale(Value x, ArrayRef<PackedProduct> group) {
    auto norm = x.getDefiningOp<RmsNormOp>();
    if (!norm)
      return nullptr;
    auto scale = norm.getWeight().getDefiningOp<WeightOp>();
    if (!scale || !scale->hasOneUse() || scale.getSourceScheme() ||
        !cast<RankedTensorType>(scale.getType()).getElementType().isF32() ||
        cast<RankedTensorType>(scale.getType()).getRank() != 1)
      return nullptr;
    for (OpOperand &use : x.getUses())
      if (!llvm::any_of(group, [&](const PackedProduct &p) { return p.activations == &use; }))
        return nullptr;
    return scale;
  }

  /// x * (1/s) along the innermost dimension, read by the group's products instead
  /// of x.
  static void divideExplicitly(Value x, ArrayRef<float> scale, ArrayRef<PackedProduct> group) {
    auto type = cast<RankedTensorType>(x.getType());
    Operation *first = group.front().activations->getOwner();
    for (const PackedProduct &p : group)
      if (p.activations->getOwner()->isBeforeInBlock(first))
        first = p.activations->getOwner();
    OpBuilder b(first);
    SmallVector<float> inverse;
    for (float s : scale)
      inverse.push_back(1.0f / s);
    auto vectorType = RankedTensorType::get({type.getShape().back()}, b.getF32Type());
    Value factors = arith::ConstantOp::create(
        b, x.getLoc(), vectorType, DenseElementsAttr::get(vectorType, ArrayRef<float>(inverse)));
    int64_t rank = type.getRank();
    Value init = tensor::EmptyOp::create(b, x.getLoc(), type.getShape(), b.getF32Type());
    AffineMap identity = b.getMultiDimIdentityMap(rank);
    AffineMap innermost = AffineMap::get(rank, 0, b.getAffineDimExpr(rank - 1));
    auto multiply = linalg::GenericOp::create(
        b, x.getLoc(), type, ValueRange{x, factors}, ValueRange{init},
        ArrayRef<AffineMap>{identity, innermost, identity},
        SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
        [](OpBuilder &nested, Location loc, ValueRange args) {
          Value product = arith::MulFOp::create(nested, loc, args[0], args[1]);
          linalg::YieldOp::create(nested, loc, product);
        });
    for (const PackedProduct &p : group)
      p.activations->set(multiply.getResult(0));
  }

  LogicalResult scaleGroup(Value x, ArrayRef<PackedProduct> group) {
    int64_t k = cast<RankedTensorType>(x.getType()).getShape().back();
    if (!cast<RankedTensorType>(x.getType()).hasStaticShape())
      return success();
    FailureOr<FloatMatrix> rows = readActivations(WeightOp(group.front().weight), k);
    if (failed(rows))
      return failure();
    std::vector<FloatMatrix> weights;
    for (PackedProduct p : group) {
      FailureOr<FloatMatrix> w = readWeight(p.weight);
      if (failed(w))
        return failure();
      weights.push_back(std::move(*w));
    }
    SmallVector<const FloatMatrix *> pointers;
    for (const FloatMatrix &w : weights)
      pointers.push_back(&w);
    WeightOp first = group.front().weight;
    QuantScheme scheme =
        cast<QuantType>(cast<RankedTensorType>(first.getType()).getElementType()).getScheme();
    AwqScales best = searchAwqScales(*rows, pointers, scheme, steps);
    if (best.alpha == 0)
      return success();
    for (const PackedProduct &p : group)
      multiplyInputScale(p.weight, best.scale);
    if (WeightOp normScale = foldableNormScale(x, group)) {
      SmallVector<float> inverse;
      for (float s : best.scale)
        inverse.push_back(1.0f / s);
      multiplyInputScale(normScale, inverse);
    } else {
      divideExplicitly(x, best.scale, group);
    }
    return success();
  }

  void runOnOperation() override {
    llvm::MapVector<Value, SmallVector<PackedProduct>> groups;
    llvm::StringMap<unsigned> reads;
    getOperation().walk([&](linalg::LinalgOp op) {
      if (!linalg::isaContractionOpInterface(op))
        return;
      for (OpOperand *operand : op.getDpsInputOperands())
        if (std::optional<PackedProduct> product = matchPackedProduct(op, *operand)) {
          ++reads[product->weight.getName()];
          groups[product->activations->get()].push_back(*product);
        }
    });
    for (auto &[x, group] : groups) {
      // A weight several products read (kiln-return-product-inputs exposed none of
      // their activations) keeps its group round-to-nearest.
      if (llvm::any_of(group, [&](PackedProduct p) { return reads[p.weight.getName()] != 1; }))
        continue;
      if (failed(scaleGroup(x, group)))
        return signalPassFailure();
    }
  }
};

} // namespace
