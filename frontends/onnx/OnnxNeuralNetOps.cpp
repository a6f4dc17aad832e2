// ONNX neural-network ops: MatMul, Gemm, Einsum, Conv, ConvTranspose, pooling and
// normalizations, as linalg.generic contractions and reductions.
#include "frontends/onnx/OnnxLinalgBuilders.h"
#include "frontends/onnx/OnnxNodeImporter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include <map>

using namespace mlir;
using namespace kiln::onnx_import;

namespace {

bool isFloat(Type type) { return isa<FloatType>(type); }

Value multiplyAdd(OpBuilder &b, Location loc, Value x, Value y, Value acc) {
  if (isFloat(acc.getType()))
    return arith::AddFOp::create(b, loc, arith::MulFOp::create(b, loc, x, y), acc);
  return arith::AddIOp::create(b, loc, arith::MulIOp::create(b, loc, x, y), acc);
}

/// A contraction `out[outDims] = sum prod inputs[inDims]` where each operand's dims are
/// named by loop indices (negative entries: constant index 0, for broadcast dims).
Value buildContraction(OpBuilder &b, Location loc, ValueRange inputs,
                       llvm::ArrayRef<SmallVector<int64_t>> inputDims,
                       llvm::ArrayRef<int64_t> outDims, llvm::ArrayRef<int64_t> loopSizes,
                       Type element) {
  MLIRContext *context = b.getContext();
  int64_t numLoops = loopSizes.size();
  auto mapOf = [&](llvm::ArrayRef<int64_t> dims) {
    SmallVector<AffineExpr> exprs;
    for (int64_t d : dims)
      exprs.push_back(d < 0 ? getAffineConstantExpr(0, context) : getAffineDimExpr(d, context));
    return AffineMap::get(numLoops, 0, exprs, context);
  };
  SmallVector<AffineMap> maps;
  for (const SmallVector<int64_t> &dims : inputDims)
    maps.push_back(mapOf(dims));
  maps.push_back(mapOf(outDims));
  SmallVector<utils::IteratorType> iterators;
  for (int64_t i = 0; i < numLoops; ++i)
    iterators.push_back(llvm::is_contained(outDims, i) ? utils::IteratorType::parallel
                                                       : utils::IteratorType::reduction);
  SmallVector<int64_t> outShape;
  for (int64_t d : outDims)
    outShape.push_back(loopSizes[d]);
  Value init = filledTensor(b, loc, outShape, scalarConstant(b, loc, element, 0));
  return buildGeneric(b, loc, init, inputs, maps, iterators,
                      [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                        Value product = args[0];
                        for (Value v : args.drop_front().drop_back())
                          product = isFloat(v.getType())
                                        ? arith::MulFOp::create(nb, nloc, product, v).getResult()
                                        : arith::MulIOp::create(nb, nloc, product, v).getResult();
                        Value acc = args.back();
                        return isFloat(acc.getType())
                                   ? arith::AddFOp::create(nb, nloc, product, acc).getResult()
                                   : arith::AddIOp::create(nb, nloc, product, acc).getResult();
                      });
}

/// numpy matmul: batch dims broadcast; a 1-D operand is a vector whose dim disappears.
LogicalResult lowerMatMul(NodeImporter &n) {
  llvm::ArrayRef<int64_t> a = n.inputShape(0), bShape = n.inputShape(1);
  if (a.empty() || bShape.empty())
    return n.error() << "expects operands of rank >= 1";
  SmallVector<int64_t> batchA(a.drop_back(std::min<size_t>(a.size(), 2)));
  SmallVector<int64_t> batchB(bShape.drop_back(std::min<size_t>(bShape.size(), 2)));
  if (a.size() < 2)
    batchA.clear();
  if (bShape.size() < 2)
    batchB.clear();
  std::optional<SmallVector<int64_t>> batch = broadcastShapes({batchA, batchB});
  int64_t k = a.back();
  if (!batch || k != bShape[bShape.size() >= 2 ? bShape.size() - 2 : 0])
    return n.error() << "operand shapes do not match";
  SmallVector<int64_t> loops(*batch);
  int64_t nb = loops.size();
  SmallVector<int64_t> outDims;
  for (int64_t i = 0; i < nb; ++i)
    outDims.push_back(i);
  int64_t m = -1, nDim = -1;
  if (a.size() >= 2) {
    m = loops.size();
    loops.push_back(a[a.size() - 2]);
    outDims.push_back(m);
  }
  if (bShape.size() >= 2) {
    nDim = loops.size();
    loops.push_back(bShape.back());
    outDims.push_back(nDim);
  }
  int64_t kDim = loops.size();
  loops.push_back(k);
  auto operandDims = [&](llvm::ArrayRef<int64_t> batchShape, bool isA) {
    SmallVector<int64_t> dims;
    int64_t offset = nb - batchShape.size();
    for (auto [i, d] : llvm::enumerate(batchShape))
      dims.push_back(d == 1 && (*batch)[offset + i] != 1 ? -1 : offset + int64_t(i));
    if (isA) {
      if (m >= 0)
        dims.push_back(m);
      dims.push_back(kDim);
    } else {
      dims.push_back(kDim);
      if (nDim >= 0)
        dims.push_back(nDim);
    }
    return dims;
  };
  Value lhs = n.input(0), rhs = n.input(1);
  if (!lhs || !rhs)
    return failure();
  return n.setOutput(0, buildContraction(n.builder(), n.loc(), {lhs, rhs},
                                         {operandDims(batchA, true), operandDims(batchB, false)},
                                         outDims, loops, n.inputElementType(0)));
}

LogicalResult lowerGemm(NodeImporter &n) {
  llvm::ArrayRef<int64_t> a = n.inputShape(0), bShape = n.inputShape(1);
  if (a.size() != 2 || bShape.size() != 2)
    return n.error() << "expects 2-D A and B";
  bool transA = n.intAttr("transA", 0), transB = n.intAttr("transB", 0);
  double alpha = n.floatAttr("alpha", 1), beta = n.floatAttr("beta", 1);
  int64_t m = transA ? a[1] : a[0], k = transA ? a[0] : a[1];
  int64_t nSize = transB ? bShape[0] : bShape[1];
  if ((transB ? bShape[1] : bShape[0]) != k)
    return n.error() << "operand shapes do not match";
  Value lhs = n.input(0), rhs = n.input(1);
  if (!lhs || !rhs)
    return failure();
  OpBuilder &b = n.builder();
  Location loc = n.loc();
  Type type = n.inputElementType(0);
  // Loops: 0 = m, 1 = n, 2 = k.
  Value product = buildContraction(
      b, loc, {lhs, rhs},
      {transA ? SmallVector<int64_t>{2, 0} : SmallVector<int64_t>{0, 2},
       transB ? SmallVector<int64_t>{1, 2} : SmallVector<int64_t>{2, 1}},
      {0, 1}, {m, nSize, k}, type);
  bool hasC = n.hasInput(2) && beta != 0;
  if (!hasC && alpha == 1)
    return n.setOutput(0, product);
  SmallVector<Value> operands = {product};
  if (hasC) {
    operands.push_back(n.input(2));
    if (!operands.back())
      return failure();
  }
  auto scale = [&](OpBuilder &nb, Location nloc, Value v, double s) -> Value {
    if (s == 1)
      return v;
    Value c = scalarConstant(nb, nloc, type, s);
    return isFloat(type) ? arith::MulFOp::create(nb, nloc, v, c).getResult()
                         : arith::MulIOp::create(nb, nloc, v, c).getResult();
  };
  return n.setOutput(0, buildElementwise(b, loc, {m, nSize}, type, operands,
                                         [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                                           Value y = scale(nb, nloc, args[0], alpha);
                                           if (args.size() == 1)
                                             return y;
                                           Value c = scale(nb, nloc, args[1], beta);
                                           return isFloat(type) ? arith::AddFOp::create(nb, nloc, y, c).getResult()
                                                                : arith::AddIOp::create(nb, nloc, y, c).getResult();
                                         }));
}

/// Einsum: every letter is a loop; letters missing from the output are reduced.
/// Ellipses stand for the same leading dims in every operand (no broadcasting).
LogicalResult lowerEinsum(NodeImporter &n) {
  std::string equation;
  for (char c : n.stringAttr("equation", ""))
    if (c != ' ')
      equation += c;
  size_t arrow = equation.find("->");
  std::string lhs = equation.substr(0, arrow);
  SmallVector<std::string> terms;
  llvm::SmallVector<llvm::StringRef> pieces;
  llvm::StringRef(lhs).split(pieces, ',');
  if (pieces.size() != n.numInputs())
    return n.error() << "equation '" << equation << "' does not match the operand count";
  // "..." becomes the labels '0', '1', ... (ONNX labels are letters, so digits cannot
  // clash with them).
  int64_t ellipsisRank = -1;
  auto expand = [&](llvm::StringRef term, int64_t rank) -> FailureOr<std::string> {
    size_t dots = term.find("...");
    if (dots == llvm::StringRef::npos)
      return term.str();
    int64_t dims = rank - int64_t(term.size() - 3);
    if (ellipsisRank >= 0 && dims != ellipsisRank)
      return (void)n.unsupported("broadcasting ellipsis dimensions"), failure();
    ellipsisRank = dims;
    std::string placeholder;
    for (int64_t i = 0; i < dims; ++i)
      placeholder += char('0' + i);
    return (term.substr(0, dots) + placeholder + term.substr(dots + 3)).str();
  };
  std::map<char, int64_t> sizes;
  std::string loopLetters;
  SmallVector<Value> inputs;
  for (auto [i, piece] : llvm::enumerate(pieces)) {
    FailureOr<std::string> term = expand(piece, n.inputRank(i));
    if (failed(term))
      return failure();
    if (int64_t(term->size()) != n.inputRank(i))
      return n.error() << "term '" << piece.str() << "' does not match operand rank "
                       << n.inputRank(i);
    for (auto [j, c] : llvm::enumerate(*term)) {
      int64_t dim = n.inputShape(i)[j];
      auto [it, inserted] = sizes.emplace(c, dim);
      if (!inserted && it->second != dim)
        return n.unsupported("broadcasting label '" + std::string(1, c) + "'");
      if (inserted)
        loopLetters += c;
    }
    terms.push_back(*term);
    inputs.push_back(n.input(i));
    if (!inputs.back())
      return failure();
  }
  std::string out;
  if (arrow != std::string::npos) {
    FailureOr<std::string> term = expand(equation.substr(arrow + 2), std::max<int64_t>(ellipsisRank, 0) + int64_t(equation.size() - arrow - 2) - 3);
    if (failed(term))
      return failure();
    out = *term;
  } else {
    // Implicit output: ellipsis dims, then the letters used once, alphabetically.
    for (int64_t i = 0; i < ellipsisRank; ++i)
      out += char('0' + i);
    std::string once;
    for (auto [c, size] : sizes) {
      if (c >= '0' && c <= '9')
        continue;
      int count = 0;
      for (const std::string &t : terms)
        count += llvm::count(t, c);
      if (count == 1)
        once += c;
    }
    out += once;
  }
  // Output letters first, then the reduced ones.
  std::string order = out;
  for (char c : loopLetters)
    if (order.find(c) == std::string::npos)
      order += c;
  SmallVector<int64_t> loops;
  for (char c : order) {
    if (!sizes.count(c))
      return n.error() << "output label '" << c << "' appears in no operand";
    loops.push_back(sizes[c]);
  }
  SmallVector<SmallVector<int64_t>> inputDims;
  for (const std::string &t : terms) {
    SmallVector<int64_t> dims;
    for (char c : t)
      dims.push_back(order.find(c));
    inputDims.push_back(dims);
  }
  SmallVector<int64_t> outDims;
  for (size_t i = 0; i < out.size(); ++i)
    outDims.push_back(i);
  return n.setOutput(0, buildContraction(n.builder(), n.loc(), inputs, inputDims, outDims,
                                         loops, n.inputElementType(0)));
}

/// Spatial geometry shared by Conv and the pools: per spatial dim, kernel, stride,
/// dilation, padding (after auto_pad) and output size.
struct Window {
  SmallVector<int64_t> kernel, strides, dilations, padBegin, padEnd, output;
};

FailureOr<Window> resolveWindow(NodeImporter &n, llvm::ArrayRef<int64_t> spatial,
                                llvm::ArrayRef<int64_t> kernel, bool ceilMode) {
  size_t rank = spatial.size();
  Window w;
  w.kernel.assign(kernel.begin(), kernel.end());
  std::vector<int64_t> strides = n.intsAttr("strides"), dilations = n.intsAttr("dilations"),
                       pads = n.intsAttr("pads");
  w.strides.assign(rank, 1);
  w.dilations.assign(rank, 1);
  w.padBegin.assign(rank, 0);
  w.padEnd.assign(rank, 0);
  if (!strides.empty()) {
    if (strides.size() != rank)
      return n.error() << "strides do not match the spatial rank", failure();
    w.strides.assign(strides.begin(), strides.end());
  }
  if (!dilations.empty()) {
    if (dilations.size() != rank)
      return n.error() << "dilations do not match the spatial rank", failure();
    w.dilations.assign(dilations.begin(), dilations.end());
  }
  std::string autoPad = n.stringAttr("auto_pad", "NOTSET");
  if (autoPad == "NOTSET" && !pads.empty()) {
    if (pads.size() != 2 * rank)
      return n.error() << "pads do not match the spatial rank", failure();
    w.padBegin.assign(pads.begin(), pads.begin() + rank);
    w.padEnd.assign(pads.begin() + rank, pads.end());
  }
  for (size_t i = 0; i < rank; ++i) {
    int64_t extent = (w.kernel[i] - 1) * w.dilations[i] + 1;
    if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
      int64_t out = (spatial[i] + w.strides[i] - 1) / w.strides[i];
      int64_t total = std::max<int64_t>((out - 1) * w.strides[i] + extent - spatial[i], 0);
      int64_t small = total / 2;
      w.padBegin[i] = autoPad == "SAME_UPPER" ? small : total - small;
      w.padEnd[i] = total - w.padBegin[i];
    } else if (autoPad != "NOTSET" && autoPad != "VALID") {
      return (void)n.unsupported("auto_pad '" + autoPad + "'"), failure();
    }
    int64_t span = spatial[i] + w.padBegin[i] + w.padEnd[i] - extent;
    if (span < 0)
      return n.error() << "kernel is larger than the padded input", failure();
    int64_t out = (ceilMode ? (span + w.strides[i] - 1) / w.strides[i] : span / w.strides[i]) + 1;
    // A window starting in the end padding (possible with ceil_mode) is dropped.
    if (ceilMode && (out - 1) * w.strides[i] >= spatial[i] + w.padBegin[i])
      --out;
    w.output.push_back(out);
  }
  return w;
}

/// Adds a [M] bias to an N x M x spatial tensor.
Value addChannelBias(OpBuilder &b, Location loc, Value x, Value bias) {
  auto type = cast<RankedTensorType>(x.getType());
  SmallVector<int64_t> biasShape(type.getRank() - 1, 1);
  biasShape[0] = type.getDimSize(1);
  bias = buildReshape(b, loc, bias, biasShape);
  return buildElementwise(b, loc, type.getShape(), type.getElementType(), {x, bias},
                          [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                            return arith::AddFOp::create(nb, nloc, args[0], args[1]);
                          });
}

LogicalResult lowerConv(NodeImporter &n) {
  llvm::ArrayRef<int64_t> x = n.inputShape(0), wShape = n.inputShape(1);
  if (x.size() < 3 || wShape.size() != x.size())
    return n.error() << "expects N x C x spatial input and matching weights";
  if (!isFloat(n.inputElementType(0)))
    return n.unsupported("input type " + onnxTypeName(n.inputOnnxType(0)));
  int64_t group = n.intAttr("group", 1);
  int64_t channels = x[1], filters = wShape[0], perGroup = wShape[1];
  if (group <= 0 || channels != perGroup * group || filters % group != 0)
    return n.error() << "channel counts do not match group " << group;
  size_t spatialRank = x.size() - 2;
  FailureOr<Window> w = resolveWindow(n, x.drop_front(2), wShape.drop_front(2), false);
  if (failed(w))
    return failure();
  Value input = n.input(0), weight = n.input(1);
  if (!input || !weight)
    return failure();
  OpBuilder &b = n.builder();
  Location loc = n.loc();
  MLIRContext *context = b.getContext();
  Type type = n.inputElementType(0);
  SmallVector<int64_t> low = {0, 0}, high = {0, 0};
  llvm::append_range(low, w->padBegin);
  llvm::append_range(high, w->padEnd);
  input = buildPad(b, loc, input, low, high, scalarConstant(b, loc, type, 0));
  // Loops: n, m, o_1..o_s (parallel), c, k_1..k_s (reduction).
  int64_t numLoops = 3 + 2 * spatialRank;
  auto dim = [&](int64_t i) { return getAffineDimExpr(i, context); };
  int64_t cLoop = 2 + spatialRank;
  AffineExpr channel = dim(cLoop);
  if (group > 1)
    channel = dim(1).floorDiv(filters / group) * perGroup + dim(cLoop);
  SmallVector<AffineExpr> inExprs = {dim(0), channel}, wExprs = {dim(1), dim(cLoop)},
                          outExprs = {dim(0), dim(1)};
  SmallVector<int64_t> outShape = {x[0], filters};
  for (size_t i = 0; i < spatialRank; ++i) {
    AffineExpr o = dim(2 + i), k = dim(cLoop + 1 + i);
    inExprs.push_back(o * w->strides[i] + k * w->dilations[i]);
    wExprs.push_back(k);
    outExprs.push_back(o);
    outShape.push_back(w->output[i]);
  }
  SmallVector<utils::IteratorType> iterators(2 + spatialRank, utils::IteratorType::parallel);
  iterators.append(1 + spatialRank, utils::IteratorType::reduction);
  Value init = filledTensor(b, loc, outShape, scalarConstant(b, loc, type, 0));
  Value conv = buildGeneric(
      b, loc, init, {input, weight},
      {AffineMap::get(numLoops, 0, inExprs, context), AffineMap::get(numLoops, 0, wExprs, context),
       AffineMap::get(numLoops, 0, outExprs, context)},
      iterators, [](OpBuilder &nb, Location nloc, ValueRange args) {
        return multiplyAdd(nb, nloc, args[0], args[1], args[2]);
      });
  if (!n.hasInput(2))
    return n.setOutput(0, conv);
  Value bias = n.input(2);
  if (!bias)
    return failure();
  return n.setOutput(0, addChannelBias(b, loc, conv, bias));
}

/// ConvTranspose, the scatter of each input element times the kernel into the output,
/// written as a gather: output position o (after the begin padding, p = o + pad) sums
/// the taps k whose input position (p - k * dilation) / stride is integral and inside
/// the input. The input is zero-padded so that every tap reads in bounds, and the body
/// drops the taps whose position is not a multiple of the stride.
LogicalResult lowerConvTranspose(NodeImporter &n) {
  llvm::ArrayRef<int64_t> x = n.inputShape(0), wShape = n.inputShape(1);
  if (x.size() < 3 || wShape.size() != x.size())
    return n.error() << "expects N x C x spatial input and matching weights";
  if (!isFloat(n.inputElementType(0)))
    return n.unsupported("input type " + onnxTypeName(n.inputOnnxType(0)));
  int64_t group = n.intAttr("group", 1);
  int64_t channels = x[1], perGroupOut = wShape[1];
  if (group <= 0 || wShape[0] != channels || channels % group != 0)
    return n.error() << "channel counts do not match group " << group;
  int64_t perGroupIn = channels / group, filters = perGroupOut * group;
  size_t rank = x.size() - 2;
  auto spatialAttr = [&](llvm::StringRef name, int64_t fallback)
      -> FailureOr<SmallVector<int64_t>> {
    std::vector<int64_t> values = n.intsAttr(name);
    if (values.empty())
      return SmallVector<int64_t>(rank, fallback);
    if (values.size() != rank)
      return n.error() << name << " do not match the spatial rank", failure();
    return SmallVector<int64_t>(values.begin(), values.end());
  };
  FailureOr<SmallVector<int64_t>> strides = spatialAttr("strides", 1),
                                  dilations = spatialAttr("dilations", 1),
                                  outputPadding = spatialAttr("output_padding", 0);
  if (failed(strides) || failed(dilations) || failed(outputPadding))
    return failure();
  std::vector<int64_t> kernelAttr = n.intsAttr("kernel_shape");
  if (!kernelAttr.empty() && llvm::ArrayRef<int64_t>(kernelAttr) != wShape.drop_front(2))
    return n.error() << "kernel_shape does not match the weights";
  std::string autoPad = n.stringAttr("auto_pad", "NOTSET");
  if (autoPad != "NOTSET" && autoPad != "VALID" && autoPad != "SAME_UPPER" &&
      autoPad != "SAME_LOWER")
    return n.unsupported("auto_pad '" + autoPad + "'");
  std::vector<int64_t> pads = n.intsAttr("pads"), outputShape = n.intsAttr("output_shape");
  if (outputShape.size() == rank + 2)
    outputShape.erase(outputShape.begin(), outputShape.begin() + 2);
  if (!outputShape.empty() && outputShape.size() != rank)
    return n.error() << "output_shape does not match the spatial rank";
  if (autoPad == "NOTSET" && outputShape.empty() && !pads.empty() && pads.size() != 2 * rank)
    return n.error() << "pads do not match the spatial rank";
  // Per spatial dim: the begin padding and the output size.
  SmallVector<int64_t> padBegin(rank, 0), output(rank, 0), extents(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t s = (*strides)[i], in = x[2 + i];
    extents[i] = (wShape[2 + i] - 1) * (*dilations)[i] + 1;
    int64_t full = s * (in - 1) + (*outputPadding)[i] + extents[i];
    bool same = autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER";
    if (!outputShape.empty() || same) {
      // The total padding trims the full output to the requested size; when the
      // request is larger, the output grows at the end.
      output[i] = outputShape.empty() ? in * s : outputShape[i];
      int64_t total = std::max<int64_t>(full - output[i], 0);
      padBegin[i] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
    } else {
      int64_t begin = pads.empty() || autoPad == "VALID" ? 0 : pads[i];
      int64_t end = pads.empty() || autoPad == "VALID" ? 0 : pads[i + rank];
      padBegin[i] = begin;
      output[i] = full - begin - end;
    }
    if (output[i] <= 0 || (*strides)[i] <= 0 || (*dilations)[i] <= 0)
      return n.error() << "computes an empty output along spatial dim " << i;
  }
  Value input = n.input(0), weight = n.input(1);
  if (!input || !weight)
    return failure();
  OpBuilder &b = n.builder();
  Location loc = n.loc();
  MLIRContext *context = b.getContext();
  Type type = n.inputElementType(0);
  // Input position of tap k at output o: (o + padBegin - k * d) / s. Pad the input so
  // that the floor of every such position, shifted by the low padding, is in bounds.
  SmallVector<int64_t> low = {0, 0}, high = {0, 0};
  for (size_t i = 0; i < rank; ++i) {
    int64_t s = (*strides)[i];
    int64_t lowest = llvm::divideFloorSigned(padBegin[i] - (extents[i] - 1), s);
    int64_t highest = llvm::divideFloorSigned(output[i] - 1 + padBegin[i], s);
    low.push_back(std::max<int64_t>(-lowest, 0));
    high.push_back(std::max<int64_t>(highest - (x[2 + i] - 1), 0));
  }
  input = buildPad(b, loc, input, low, high, scalarConstant(b, loc, type, 0));
  // Loops: n, m, o_1..o_s (parallel), c, k_1..k_s (reduction).
  int64_t numLoops = 3 + 2 * rank;
  auto dim = [&](int64_t i) { return getAffineDimExpr(i, context); };
  int64_t cLoop = 2 + rank;
  // Output channel m belongs to group m / (M / group) and reads its input channels.
  AffineExpr channel = dim(cLoop), filter = dim(1);
  if (group > 1) {
    channel = dim(1).floorDiv(perGroupOut) * perGroupIn + dim(cLoop);
    filter = dim(1) % perGroupOut;
  }
  SmallVector<AffineExpr> inExprs = {dim(0), channel}, wExprs = {channel, filter},
                          outExprs = {dim(0), dim(1)};
  SmallVector<int64_t> outShape = {x[0], filters};
  for (size_t i = 0; i < rank; ++i) {
    AffineExpr o = dim(2 + i), k = dim(cLoop + 1 + i);
    // Shifted by low * s so that the dividend is never negative.
    AffineExpr position = o + (padBegin[i] + low[2 + i] * (*strides)[i]) - k * (*dilations)[i];
    inExprs.push_back(position.floorDiv((*strides)[i]));
    wExprs.push_back(k);
    outExprs.push_back(o);
    outShape.push_back(output[i]);
  }
  SmallVector<utils::IteratorType> iterators(2 + rank, utils::IteratorType::parallel);
  iterators.append(1 + rank, utils::IteratorType::reduction);
  SmallVector<Value> operands = {input, weight};
  SmallVector<AffineMap> maps = {AffineMap::get(numLoops, 0, inExprs, context),
                                 AffineMap::get(numLoops, 0, wExprs, context)};
  if (group > 1) {
    // With groups no operand names the channel loop alone; its extent comes from a
    // [C / group] operand the body ignores (as the pools' window).
    operands.push_back(filledTensor(b, loc, {perGroupIn}, scalarConstant(b, loc, type, 0)));
    maps.push_back(AffineMap::get(numLoops, 0, dim(cLoop), context));
  }
  maps.push_back(AffineMap::get(numLoops, 0, outExprs, context));
  Value init = filledTensor(b, loc, outShape, scalarConstant(b, loc, type, 0));
  Value result = buildGeneric(
      b, loc, init, operands, maps, iterators,
      [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
        Value sum = multiplyAdd(nb, nloc, args[0], args[1], args.back());
        // Only taps landing on a multiple of the stride read an input element.
        Value aligned;
        Type i64 = nb.getI64Type();
        for (size_t i = 0; i < rank; ++i) {
          int64_t s = (*strides)[i];
          if (s == 1)
            continue;
          auto index = [&](int64_t loop) {
            return arith::IndexCastOp::create(nb, nloc, i64, linalg::IndexOp::create(nb, nloc, loop));
          };
          Value offset = scalarConstant(nb, nloc, i64, padBegin[i] + low[2 + i] * s);
          Value taps = arith::MulIOp::create(nb, nloc, index(cLoop + 1 + i),
                                             scalarConstant(nb, nloc, i64, (*dilations)[i]));
          Value position = arith::SubIOp::create(
              nb, nloc, arith::AddIOp::create(nb, nloc, index(2 + i), offset), taps);
          Value rem = arith::RemSIOp::create(nb, nloc, position, scalarConstant(nb, nloc, i64, s));
          Value isAligned = arith::CmpIOp::create(nb, nloc, arith::CmpIPredicate::eq, rem,
                                                  scalarConstant(nb, nloc, i64, 0));
          aligned = aligned ? arith::AndIOp::create(nb, nloc, aligned, isAligned).getResult()
                            : isAligned;
        }
        return aligned ? arith::SelectOp::create(nb, nloc, aligned, sum, args.back()).getResult()
                       : sum;
      });
  if (!n.hasInput(2))
    return n.setOutput(0, result);
  Value bias = n.input(2);
  if (!bias)
    return failure();
  return n.setOutput(0, addChannelBias(b, loc, result, bias));
}

/// Max or average pooling over windows of the spatial dims.
LogicalResult lowerPool(NodeImporter &n, bool isMax) {
  llvm::ArrayRef<int64_t> x = n.inputShape(0);
  if (x.size() < 3)
    return n.error() << "expects an N x C x spatial input";
  if (isMax && n.hasOutput(1))
    return n.unsupported("the Indices output");
  std::vector<int64_t> kernel = n.intsAttr("kernel_shape");
  size_t spatialRank = x.size() - 2;
  if (kernel.size() != spatialRank)
    return n.error() << "kernel_shape does not match the spatial rank";
  bool ceilMode = n.intAttr("ceil_mode", 0) != 0;
  FailureOr<Window> w = resolveWindow(n, x.drop_front(2), kernel, ceilMode);
  if (failed(w))
    return failure();
  Value input = n.input(0);
  if (!input)
    return failure();
  OpBuilder &b = n.builder();
  Location loc = n.loc();
  MLIRContext *context = b.getContext();
  Type type = n.inputElementType(0);
  bool isUnsigned = n.inputIsUnsigned(0);
  // Pad so every window (including ceil_mode's last) lies inside the tensor; padding
  // never wins a max and is left out of (or counted in) an average's divisor below.
  SmallVector<int64_t> low = {0, 0}, high = {0, 0};
  for (size_t i = 0; i < spatialRank; ++i) {
    int64_t extent = (w->kernel[i] - 1) * w->dilations[i] + 1;
    int64_t needed = (w->output[i] - 1) * w->strides[i] + extent;
    low.push_back(w->padBegin[i]);
    high.push_back(std::max<int64_t>(needed - x[2 + i] - w->padBegin[i], w->padEnd[i]));
  }
  Value padValue = isMax ? lowestValue(b, loc, type, isUnsigned) : scalarConstant(b, loc, type, 0);
  input = buildPad(b, loc, input, low, high, padValue);
  int64_t numLoops = 2 + 2 * spatialRank;
  auto dim = [&](int64_t i) { return getAffineDimExpr(i, context); };
  SmallVector<AffineExpr> inExprs = {dim(0), dim(1)}, kExprs, outExprs = {dim(0), dim(1)};
  SmallVector<int64_t> outShape = {x[0], x[1]};
  for (size_t i = 0; i < spatialRank; ++i) {
    AffineExpr o = dim(2 + i), k = dim(2 + spatialRank + i);
    inExprs.push_back(o * w->strides[i] + k * w->dilations[i]);
    kExprs.push_back(k);
    outExprs.push_back(o);
    outShape.push_back(w->output[i]);
  }
  SmallVector<utils::IteratorType> iterators(2 + spatialRank, utils::IteratorType::parallel);
  iterators.append(spatialRank, utils::IteratorType::reduction);
  // The window's extent comes from a kernel-shaped operand the body ignores, as in
  // linalg.pooling_* (filled, so that nothing reads undefined contents).
  Value window = filledTensor(b, loc, w->kernel, scalarConstant(b, loc, type, 0));
  Value init = filledTensor(b, loc, outShape, padValue);
  Value pooled = buildGeneric(
      b, loc, init, {input, window},
      {AffineMap::get(numLoops, 0, inExprs, context), AffineMap::get(numLoops, 0, kExprs, context),
       AffineMap::get(numLoops, 0, outExprs, context)},
      iterators, [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
        if (!isMax)
          return arith::AddFOp::create(nb, nloc, args[0], args[2]);
        if (isFloat(type))
          return arith::MaximumFOp::create(nb, nloc, args[0], args[2]);
        return isUnsigned ? arith::MaxUIOp::create(nb, nloc, args[0], args[2]).getResult()
                          : arith::MaxSIOp::create(nb, nloc, args[0], args[2]).getResult();
      });
  if (isMax)
    return n.setOutput(0, pooled);
  // Divisor per output position: window elements inside the input, or inside the
  // explicitly padded input with count_include_pad.
  bool includePad = n.intAttr("count_include_pad", 0) != 0;
  SmallVector<SmallVector<int64_t>> counts(spatialRank);
  for (size_t i = 0; i < spatialRank; ++i) {
    int64_t lo = includePad ? -w->padBegin[i] : 0;
    int64_t hi = includePad ? x[2 + i] + w->padEnd[i] : x[2 + i];
    for (int64_t o = 0; o < w->output[i]; ++o) {
      int64_t count = 0;
      for (int64_t k = 0; k < w->kernel[i]; ++k) {
        int64_t pos = o * w->strides[i] + k * w->dilations[i] - w->padBegin[i];
        count += pos >= lo && pos < hi;
      }
      counts[i].push_back(count);
    }
  }
  SmallVector<int64_t> divisorShape(outShape.begin() + 2, outShape.end());
  RankedTensorType divisorType = RankedTensorType::get(divisorShape, type);
  SmallVector<APFloat> divisors;
  int64_t total = divisorType.getNumElements();
  for (int64_t flat = 0; flat < total; ++flat) {
    int64_t rest = flat, count = 1;
    for (int64_t i = spatialRank - 1; i >= 0; --i) {
      count *= counts[i][rest % divisorShape[i]];
      rest /= divisorShape[i];
    }
    APFloat v(double(std::max<int64_t>(count, 1)));
    bool losesInfo;
    v.convert(cast<FloatType>(type).getFloatSemantics(), APFloat::rmNearestTiesToEven, &losesInfo);
    divisors.push_back(v);
  }
  Value divisor = arith::ConstantOp::create(b, loc, DenseElementsAttr::get(divisorType, divisors));
  return n.setOutput(0, buildElementwise(b, loc, outShape, type, {pooled, divisor},
                                         [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                                           return arith::DivFOp::create(nb, nloc, args[0], args[1]);
                                         }));
}

LogicalResult lowerGlobalPool(NodeImporter &n, bool isMax) {
  int64_t rank = n.inputRank(0);
  if (rank < 3)
    return n.error() << "expects an N x C x spatial input";
  Value x = n.input(0);
  if (!x)
    return failure();
  OpBuilder &b = n.builder();
  Location loc = n.loc();
  Type type = n.inputElementType(0);
  SmallVector<int64_t> axes;
  int64_t count = 1;
  for (int64_t i = 2; i < rank; ++i) {
    axes.push_back(i);
    count *= n.inputShape(0)[i];
  }
  Value init = isMax ? lowestValue(b, loc, type, false) : scalarConstant(b, loc, type, 0);
  Value reduced = buildReduction(b, loc, x, axes, true, init,
                                 [&](OpBuilder &nb, Location nloc, Value e, Value acc) -> Value {
                                   if (isMax)
                                     return arith::MaximumFOp::create(nb, nloc, e, acc);
                                   return arith::AddFOp::create(nb, nloc, e, acc);
                                 });
  if (isMax)
    return n.setOutput(0, reduced);
  return n.setOutput(0, buildElementwise(b, loc, cast<RankedTensorType>(reduced.getType()).getShape(),
                                         type, reduced,
                                         [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                                           return arith::DivFOp::create(nb, nloc, args[0], scalarConstant(nb, nloc, type, count));
                                         }));
}

/// Mean and variance of `x` over `axes` (kept as size-1 dims): returns x - mean and
/// 1 / sqrt(var + epsilon), plus the mean.
struct Moments {
  Value centered, invStdDev, mean;
};

Moments buildMoments(OpBuilder &b, Location loc, Value x, llvm::ArrayRef<int64_t> axes,
                     double epsilon) {
  auto type = cast<RankedTensorType>(x.getType());
  Type element = type.getElementType();
  int64_t count = 1;
  for (int64_t axis : axes)
    count *= type.getDimSize(axis);
  auto sumOver = [&](Value v) {
    return buildReduction(b, loc, v, axes, true, scalarConstant(b, loc, element, 0),
                          [](OpBuilder &nb, Location nloc, Value e, Value acc) -> Value {
                            return arith::AddFOp::create(nb, nloc, e, acc);
                          });
  };
  auto divideByCount = [&](Value v) {
    return buildElementwise(b, loc, element, v, [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
      return arith::DivFOp::create(nb, nloc, args[0], scalarConstant(nb, nloc, element, count));
    });
  };
  Value mean = divideByCount(sumOver(x));
  Value centered = buildElementwise(b, loc, element, {x, mean},
                                    [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                                      return arith::SubFOp::create(nb, nloc, args[0], args[1]);
                                    });
  Value squares = buildElementwise(b, loc, element, centered,
                                   [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                                     return arith::MulFOp::create(nb, nloc, args[0], args[0]);
                                   });
  Value variance = divideByCount(sumOver(squares));
  Value invStdDev = buildElementwise(
      b, loc, element, variance, [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
        Value shifted = arith::AddFOp::create(nb, nloc, args[0], scalarConstant(nb, nloc, element, epsilon));
        return math::RsqrtOp::create(nb, nloc, shifted);
      });
  return {centered, invStdDev, mean};
}

/// y = centered * invStdDev * scale + bias (scale and bias already broadcastable).
Value affineNormalize(OpBuilder &b, Location loc, const Moments &m, Value scale, Value bias) {
  SmallVector<Value> operands = {m.centered, m.invStdDev, scale};
  if (bias)
    operands.push_back(bias);
  Type element = cast<RankedTensorType>(m.centered.getType()).getElementType();
  return buildElementwise(
      b, loc, cast<RankedTensorType>(m.centered.getType()).getShape(), element, operands,
      [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
        Value y = arith::MulFOp::create(nb, nloc, arith::MulFOp::create(nb, nloc, args[0], args[1]), args[2]);
        return args.size() == 4 ? arith::AddFOp::create(nb, nloc, y, args[3]).getResult() : y;
      });
}

/// Reshapes a per-channel [C] parameter to [C, 1, ...] for an N x C x spatial tensor.
Value perChannel(OpBuilder &b, Location loc, Value v, int64_t rank) {
  auto type = cast<RankedTensorType>(v.getType());
  SmallVector<int64_t> shape(rank - 1, 1);
  shape[0] = type.getNumElements();
  return buildReshape(b, loc, v, shape);
}

LogicalResult lowerLayerNorm(NodeImporter &n) {
  if (!isFloat(n.inputElementType(0)))
    return n.unsupported("input type " + onnxTypeName(n.inputOnnxType(0)));
  int64_t rank = n.inputRank(0);
  FailureOr<int64_t> axis = n.normalizeAxis(n.intAttr("axis", -1), rank);
  if (failed(axis))
    return failure();
  SmallVector<int64_t> axes;
  for (int64_t i = *axis; i < rank; ++i)
    axes.push_back(i);
  Value x = n.input(0), scale = n.input(1);
  Value bias = n.hasInput(2) ? n.input(2) : Value();
  if (!x || !scale || (n.hasInput(2) && !bias))
    return failure();
  OpBuilder &b = n.builder();
  Moments m = buildMoments(b, n.loc(), x, axes, n.floatAttr("epsilon", 1e-5f));
  if (failed(n.setOutput(0, affineNormalize(b, n.loc(), m, scale, bias))))
    return failure();
  if (n.hasOutput(1) && failed(n.setOutput(1, m.mean)))
    return failure();
  if (n.hasOutput(2) && failed(n.setOutput(2, m.invStdDev)))
    return failure();
  return success();
}

LogicalResult lowerInstanceNorm(NodeImporter &n) {
  int64_t rank = n.inputRank(0);
  if (rank < 3 || !isFloat(n.inputElementType(0)))
    return n.error() << "expects a floating-point N x C x spatial input";
  SmallVector<int64_t> axes;
  for (int64_t i = 2; i < rank; ++i)
    axes.push_back(i);
  Value x = n.input(0), scale = n.input(1), bias = n.input(2);
  if (!x || !scale || !bias)
    return failure();
  OpBuilder &b = n.builder();
  Location loc = n.loc();
  Moments m = buildMoments(b, loc, x, axes, n.floatAttr("epsilon", 1e-5f));
  return n.setOutput(0, affineNormalize(b, loc, m, perChannel(b, loc, scale, rank),
                                        perChannel(b, loc, bias, rank)));
}

LogicalResult lowerBatchNorm(NodeImporter &n) {
  if (n.intAttr("training_mode", 0) != 0 || n.hasOutput(1))
    return n.unsupported("training mode");
  int64_t rank = n.inputRank(0);
  if (rank < 2 || !isFloat(n.inputElementType(0)))
    return n.error() << "expects a floating-point N x C x ... input";
  SmallVector<Value> operands;
  for (unsigned i = 0; i < 5; ++i) {
    Value v = n.input(i);
    if (!v)
      return failure();
    operands.push_back(i == 0 ? v : perChannel(n.builder(), n.loc(), v, rank));
  }
  double epsilon = n.floatAttr("epsilon", 1e-5f);
  Type type = n.inputElementType(0);
  return n.setOutput(0, buildElementwise(
                            n.builder(), n.loc(), n.inputShape(0), type, operands,
                            [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                              // (x - mean) / sqrt(var + epsilon) * scale + bias
                              Value centered = arith::SubFOp::create(nb, nloc, args[0], args[3]);
                              Value var = arith::AddFOp::create(nb, nloc, args[4], scalarConstant(nb, nloc, type, epsilon));
                              Value normalized = arith::DivFOp::create(nb, nloc, centered, math::SqrtOp::create(nb, nloc, var));
                              return arith::AddFOp::create(nb, nloc, arith::MulFOp::create(nb, nloc, normalized, args[1]), args[2]);
                            }));
}

LogicalResult lowerMeanVarianceNorm(NodeImporter &n) {
  int64_t rank = n.inputRank(0);
  std::vector<int64_t> axesAttr = n.hasAttr("axes") ? n.intsAttr("axes") : std::vector<int64_t>{0, 2, 3};
  SmallVector<int64_t> axes;
  for (int64_t a : axesAttr) {
    FailureOr<int64_t> axis = n.normalizeAxis(a, rank);
    if (failed(axis))
      return failure();
    axes.push_back(*axis);
  }
  llvm::sort(axes);
  Value x = n.input(0);
  if (!x)
    return failure();
  OpBuilder &b = n.builder();
  Location loc = n.loc();
  Type type = n.inputElementType(0);
  // The ONNX function: (x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9).
  Moments m = buildMoments(b, loc, x, axes, 0);
  return n.setOutput(0, buildElementwise(b, loc, type, {m.centered, m.invStdDev},
                                         [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                                           Value one = scalarConstant(nb, nloc, type, 1);
                                           Value stdDev = arith::DivFOp::create(nb, nloc, one, args[1]);
                                           Value denom = arith::AddFOp::create(nb, nloc, stdDev, scalarConstant(nb, nloc, type, 1e-9));
                                           return arith::DivFOp::create(nb, nloc, args[0], denom);
                                         }));
}

LogicalResult lowerLpNorm(NodeImporter &n) {
  int64_t rank = n.inputRank(0);
  FailureOr<int64_t> axis = n.normalizeAxis(n.intAttr("axis", -1), rank);
  if (failed(axis))
    return failure();
  int64_t p = n.intAttr("p", 2);
  if (p != 1 && p != 2)
    return n.unsupported("p = " + std::to_string(p));
  Value x = n.input(0);
  if (!x)
    return failure();
  OpBuilder &b = n.builder();
  Location loc = n.loc();
  Type type = n.inputElementType(0);
  Value norm = buildReduction(b, loc, x, {*axis}, true, scalarConstant(b, loc, type, 0),
                              [&](OpBuilder &nb, Location nloc, Value e, Value acc) -> Value {
                                Value term = p == 1 ? math::AbsFOp::create(nb, nloc, e).getResult()
                                                    : arith::MulFOp::create(nb, nloc, e, e).getResult();
                                return arith::AddFOp::create(nb, nloc, term, acc);
                              });
  return n.setOutput(0, buildElementwise(b, loc, type, {x, norm},
                                         [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                                           Value d = p == 1 ? args[1] : math::SqrtOp::create(nb, nloc, args[1]).getResult();
                                           return arith::DivFOp::create(nb, nloc, args[0], d);
                                         }));
}

/// LRN: x / (bias + alpha / size * sum of x^2 over a window of channels)^beta.
LogicalResult lowerLrn(NodeImporter &n) {
  int64_t rank = n.inputRank(0);
  int64_t size = n.intAttr("size", 0);
  if (rank < 3 || size <= 0)
    return n.error() << "expects an N x C x spatial input and a positive size";
  double alpha = n.floatAttr("alpha", 1e-4f), beta = n.floatAttr("beta", 0.75f),
         bias = n.floatAttr("bias", 1.0f);
  Value x = n.input(0);
  if (!x)
    return failure();
  OpBuilder &b = n.builder();
  Location loc = n.loc();
  MLIRContext *context = b.getContext();
  Type type = n.inputElementType(0);
  llvm::ArrayRef<int64_t> shape = n.inputShape(0);
  Value squares = buildElementwise(b, loc, type, x, [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
    return arith::MulFOp::create(nb, nloc, args[0], args[0]);
  });
  SmallVector<int64_t> low(rank, 0), high(rank, 0);
  low[1] = (size - 1) / 2;
  high[1] = size - 1 - low[1];
  Value padded = buildPad(b, loc, squares, low, high, scalarConstant(b, loc, type, 0));
  SmallVector<AffineExpr> inExprs, outExprs;
  for (int64_t i = 0; i < rank; ++i) {
    AffineExpr d = getAffineDimExpr(i, context);
    inExprs.push_back(i == 1 ? d + getAffineDimExpr(rank, context) : d);
    outExprs.push_back(d);
  }
  SmallVector<utils::IteratorType> iterators(rank, utils::IteratorType::parallel);
  iterators.push_back(utils::IteratorType::reduction);
  Value window = filledTensor(b, loc, {size}, scalarConstant(b, loc, type, 0));
  Value init = filledTensor(b, loc, shape, scalarConstant(b, loc, type, 0));
  Value sums = buildGeneric(
      b, loc, init, {padded, window},
      {AffineMap::get(rank + 1, 0, inExprs, context),
       AffineMap::get(rank + 1, 0, getAffineDimExpr(rank, context), context),
       AffineMap::get(rank + 1, 0, outExprs, context)},
      iterators, [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
        return arith::AddFOp::create(nb, nloc, args[0], args[2]);
      });
  return n.setOutput(0, buildElementwise(b, loc, type, {x, sums},
                                         [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                                           Value scaled = arith::MulFOp::create(nb, nloc, args[1], scalarConstant(nb, nloc, type, alpha / size));
                                           Value base = arith::AddFOp::create(nb, nloc, scaled, scalarConstant(nb, nloc, type, bias));
                                           Value denom = math::PowFOp::create(nb, nloc, base, scalarConstant(nb, nloc, type, beta));
                                           return arith::DivFOp::create(nb, nloc, args[0], denom);
                                         }));
}

} // namespace

void kiln::onnx_import::addNeuralNetLowerings(OpLoweringTable &table) {
  table["MatMul"] = lowerMatMul;
  table["Gemm"] = lowerGemm;
  table["Einsum"] = lowerEinsum;
  table["Conv"] = lowerConv;
  table["ConvTranspose"] = lowerConvTranspose;
  table["MaxPool"] = [](NodeImporter &n) { return lowerPool(n, true); };
  table["AveragePool"] = [](NodeImporter &n) { return lowerPool(n, false); };
  table["GlobalAveragePool"] = [](NodeImporter &n) { return lowerGlobalPool(n, false); };
  table["GlobalMaxPool"] = [](NodeImporter &n) { return lowerGlobalPool(n, true); };
  table["BatchNormalization"] = lowerBatchNorm;
  table["LayerNormalization"] = lowerLayerNorm;
  table["InstanceNormalization"] = lowerInstanceNorm;
  table["MeanVarianceNormalization"] = lowerMeanVarianceNorm;
  table["LpNormalization"] = lowerLpNorm;
  table["LRN"] = lowerLrn;
}
