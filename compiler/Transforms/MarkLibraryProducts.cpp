// kiln-mark-library-products: float GEMM dispatches that a device library (cuBLAS)
// computes, marked with how to call it.
#include "compiler/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"

#include <limits>
#include <optional>

namespace kiln {
#define GEN_PASS_DEF_MARKLIBRARYPRODUCTS
#include "compiler/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// How a library computes a dispatch's GEMM: for each of `batch` matrices, row-major
/// C (m x n) = A (m x k) . B (k x n), or B^T when B is stored n x k.
struct Gemm {
  unsigned a = 0, b = 0; // positions among the dispatch's inputs
  int64_t batch = 1, m = 0, n = 0, k = 0;
  int64_t aBatchStride = 0, bBatchStride = 0; // elements; 0: one matrix for every batch
  bool transposeB = false;
};

/// `value` is a float32 input of `dispatch` (a block argument of its body).
std::optional<unsigned> inputPosition(DispatchOp dispatch, Value value) {
  auto arg = dyn_cast<BlockArgument>(value);
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!arg || arg.getOwner() != &dispatch.getBody().front() || !type || !type.hasStaticShape() ||
      !type.getElementType().isF32())
    return std::nullopt;
  return arg.getArgNumber();
}

/// `value` is a tensor filled with float zero by a generic of the dispatch (a
/// linalg.fill, generalized).
bool isZeroFill(Value value) {
  auto fill = value.getDefiningOp<linalg::GenericOp>();
  std::optional<Value> scalar = fill ? linalg::isaFillOpInterface(fill) : std::nullopt;
  FloatAttr zero;
  return scalar && matchPattern(*scalar, m_Constant(&zero)) && zero.getValue().isZero();
}

/// The body multiplies its two inputs and adds the product to the accumulator.
bool multipliesAndAccumulates(linalg::GenericOp product) {
  Block &body = product.getRegion().front();
  if (body.getOperations().size() != 3)
    return false;
  auto mul = dyn_cast<arith::MulFOp>(&body.front());
  auto add = dyn_cast<arith::AddFOp>(mul ? mul->getNextNode() : nullptr);
  auto yield = dyn_cast<linalg::YieldOp>(body.getTerminator());
  if (!mul || !add || yield.getOperand(0) != add.getResult())
    return false;
  Value in0 = body.getArgument(0), in1 = body.getArgument(1), acc = body.getArgument(2);
  bool multipliesInputs = (mul.getLhs() == in0 && mul.getRhs() == in1) ||
                          (mul.getLhs() == in1 && mul.getRhs() == in0);
  bool accumulates = (add.getLhs() == acc && add.getRhs() == mul.getResult()) ||
                     (add.getRhs() == acc && add.getLhs() == mul.getResult());
  return multipliesInputs && accumulates;
}

/// The loop dimensions `map` reads, if each result is a plain dimension.
std::optional<SmallVector<unsigned>> dimensions(AffineMap map) {
  SmallVector<unsigned> dims;
  for (AffineExpr expr : map.getResults()) {
    auto dim = dyn_cast<AffineDimExpr>(expr);
    if (!dim)
      return std::nullopt;
    dims.push_back(dim.getPosition());
  }
  return dims;
}

/// The dispatch as a library GEMM, if it is one: loops (batch..., m, n, k), the last a
/// reduction, C read as (batch..., m, n), A as (batch..., m, k) or (m, k), B as
/// (batch..., k, n), (batch..., n, k), (k, n) or (n, k), every extent within an int.
std::optional<Gemm> matchGemm(DispatchOp dispatch) {
  Block &body = dispatch.getBody().front();
  if (dispatch.getNumResults() != 1)
    return std::nullopt;
  auto product = body.getTerminator()->getOperand(0).getDefiningOp<linalg::GenericOp>();
  if (!product || product.getNumDpsInputs() != 2 || product.getNumDpsInits() != 1 ||
      !multipliesAndAccumulates(product) || !isZeroFill(product.getDpsInitOperand(0)->get()))
    return std::nullopt;
  for (Operation &op : body.without_terminator())
    if (!isa<tensor::EmptyOp, arith::ConstantOp>(op) && &op != product.getOperation() &&
        &op != product.getDpsInitOperand(0)->get().getDefiningOp())
      return std::nullopt;
  if (!cast<RankedTensorType>(product.getResult(0).getType()).getElementType().isF32())
    return std::nullopt;

  unsigned loops = product.getNumLoops();
  SmallVector<utils::IteratorType> iterators = product.getIteratorTypesArray();
  if (loops < 3 || iterators.back() != utils::IteratorType::reduction ||
      product.getNumReductionLoops() != 1)
    return std::nullopt;
  unsigned batchLoops = loops - 3, m = loops - 3, n = loops - 2, k = loops - 1;
  SmallVector<unsigned> batchDims;
  for (unsigned d = 0; d < batchLoops; ++d)
    batchDims.push_back(d);
  auto withBatch = [&](std::initializer_list<unsigned> inner) {
    SmallVector<unsigned> dims = batchDims;
    dims.append(inner.begin(), inner.end());
    return dims;
  };
  auto readsAs = [](std::optional<SmallVector<unsigned>> dims, ArrayRef<unsigned> expected) {
    return dims && ArrayRef<unsigned>(*dims) == expected;
  };

  std::optional<SmallVector<unsigned>> cDims =
      dimensions(product.getMatchingIndexingMap(product.getDpsInitOperand(0)));
  if (!readsAs(cDims, withBatch({m, n})))
    return std::nullopt;
  OpOperand *aOperand = product.getDpsInputOperand(0), *bOperand = product.getDpsInputOperand(1);
  std::optional<SmallVector<unsigned>> aDims = dimensions(product.getMatchingIndexingMap(aOperand));
  std::optional<SmallVector<unsigned>> bDims = dimensions(product.getMatchingIndexingMap(bOperand));
  // The multiplication commutes: A is the operand indexed by m.
  if (aDims && llvm::is_contained(*aDims, n)) {
    std::swap(aOperand, bOperand);
    std::swap(aDims, bDims);
  }
  Gemm gemm;
  std::optional<unsigned> a = inputPosition(dispatch, aOperand->get());
  std::optional<unsigned> b = inputPosition(dispatch, bOperand->get());
  if (!a || !b)
    return std::nullopt;
  gemm.a = *a;
  gemm.b = *b;
  SmallVector<int64_t> extents = product.getStaticLoopRanges();
  gemm.m = extents[m];
  gemm.n = extents[n];
  gemm.k = extents[k];
  for (unsigned d : batchDims)
    gemm.batch *= extents[d];
  bool batchedA = readsAs(aDims, withBatch({m, k}));
  if (!batchedA && !readsAs(aDims, {m, k}))
    return std::nullopt;
  bool batchedB = readsAs(bDims, withBatch({k, n})) || readsAs(bDims, withBatch({n, k}));
  if (!batchedB && !readsAs(bDims, {k, n}) && !readsAs(bDims, {n, k}))
    return std::nullopt;
  gemm.transposeB = bDims->back() == k;
  gemm.aBatchStride = batchedA && batchLoops ? gemm.m * gemm.k : 0;
  gemm.bBatchStride = batchedB && batchLoops ? gemm.k * gemm.n : 0;
  // cuBLAS takes int extents and leading dimensions, and an int batch count.
  constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
  for (int64_t extent : {gemm.batch, gemm.m, gemm.n, gemm.k})
    if (extent <= 0 || extent > kIntMax)
      return std::nullopt;
  return gemm;
}

struct MarkLibraryProductsPass : kiln::impl::MarkLibraryProductsBase<MarkLibraryProductsPass> {
  using MarkLibraryProductsBase::MarkLibraryProductsBase;

  void runOnOperation() override {
    if (library != "cublas") {
      getOperation().emitError("kiln-mark-library-products: unknown library '")
          << library << "' (the libraries: cublas)";
      return signalPassFailure();
    }
    MLIRContext *context = &getContext();
    Builder b(context);
    getOperation().walk([&](DispatchOp dispatch) {
      std::optional<Gemm> gemm = matchGemm(dispatch);
      if (!gemm)
        return;
      // 2 * batch * m * n * k, saturating (each factor is below 2^31).
      double flops = 2.0 * double(gemm->batch) * double(gemm->m) * double(gemm->n) * double(gemm->k);
      if (flops < double(minFlops))
        return;
      NamedAttribute fields[] = {
          b.getNamedAttr("function", b.getStringAttr("cublas.gemm")),
          b.getNamedAttr("a", b.getI64IntegerAttr(gemm->a)),
          b.getNamedAttr("b", b.getI64IntegerAttr(gemm->b)),
          b.getNamedAttr("batch", b.getI64IntegerAttr(gemm->batch)),
          b.getNamedAttr("m", b.getI64IntegerAttr(gemm->m)),
          b.getNamedAttr("n", b.getI64IntegerAttr(gemm->n)),
          b.getNamedAttr("k", b.getI64IntegerAttr(gemm->k)),
          b.getNamedAttr("a_batch_stride", b.getI64IntegerAttr(gemm->aBatchStride)),
          b.getNamedAttr("b_batch_stride", b.getI64IntegerAttr(gemm->bBatchStride)),
          b.getNamedAttr("transpose_b", b.getBoolAttr(gemm->transposeB)),
      };
      dispatch->setAttr("kiln.library", b.getDictionaryAttr(fields));
    });
  }
};

} // namespace
