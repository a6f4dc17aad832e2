// ONNX ops that move data without arithmetic: reshapes, transposes, slicing, joining,
// gathering, padding, broadcasting and tiling.
#include "frontends/onnx/OnnxLinalgBuilders.h"
#include "frontends/onnx/OnnxNodeImporter.h"

#include "dialects/Kiln/KilnDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <onnx/onnx_pb.h>

using namespace mlir;
using namespace kiln::onnx_import;

namespace {

/// An ints input (opset >= `sinceOpset`) or, in older opsets, the attribute of the same
/// name. Absent in both: `std::nullopt`.
FailureOr<std::optional<std::vector<int64_t>>> intsInputOrAttr(NodeImporter &n, unsigned i,
                                                               llvm::StringRef name,
                                                               int64_t sinceOpset) {
  if (n.opset() < sinceOpset)
    return n.hasAttr(name) ? std::optional(n.intsAttr(name)) : std::nullopt;
  if (!n.hasInput(i))
    return std::optional<std::vector<int64_t>>();
  FailureOr<std::vector<int64_t>> values = n.constantInts(i, name);
  if (failed(values))
    return failure();
  return std::optional(*values);
}

/// When input `i` is computed at run time, the output shape that ONNX shape inference
/// (or the graph's declared output type) fixes; kiln compiles for static shapes, so that
/// shape determines what the input had to be.
std::optional<SmallVector<int64_t>> shapeFromInference(NodeImporter &n, unsigned i,
                                                       unsigned output = 0) {
  if (n.opset() < 13 || !n.hasInput(i) || n.constantInput(i))
    return std::nullopt;
  return n.inferredOutputShape(output);
}

/// Sorted, normalized axes (each in [0, rank)).
FailureOr<SmallVector<int64_t>> normalizeAxes(NodeImporter &n, llvm::ArrayRef<int64_t> axes,
                                              int64_t rank) {
  SmallVector<int64_t> result;
  for (int64_t axis : axes) {
    FailureOr<int64_t> a = n.normalizeAxis(axis, rank);
    if (failed(a))
      return failure();
    result.push_back(*a);
  }
  llvm::sort(result);
  return result;
}

LogicalResult reshapeTo(NodeImporter &n, llvm::ArrayRef<int64_t> shape) {
  Value x = n.input(0);
  if (!x)
    return failure();
  int64_t count = 1;
  for (int64_t d : shape)
    count *= d;
  if (count != n.inputType(0).getNumElements())
    return n.error() << "cannot reshape " << n.inputType(0) << " to "
                     << shape.size() << "-D shape with " << count << " elements";
  return n.setOutput(0, buildReshape(n.builder(), n.loc(), x, shape));
}

LogicalResult lowerReshape(NodeImporter &n) {
  if (std::optional<SmallVector<int64_t>> inferred = shapeFromInference(n, 1))
    return reshapeTo(n, *inferred);
  FailureOr<std::optional<std::vector<int64_t>>> requested =
      intsInputOrAttr(n, 1, "shape", 5);
  if (failed(requested))
    return failure();
  if (!*requested)
    return n.error() << "requires a 'shape'";
  llvm::ArrayRef<int64_t> in = n.inputShape(0);
  bool allowZero = n.intAttr("allowzero", 0) != 0;
  SmallVector<int64_t> shape;
  int64_t inferred = -1, known = 1;
  for (auto [i, d] : llvm::enumerate(**requested)) {
    if (d == 0 && !allowZero) {
      if (i >= in.size())
        return n.error() << "shape entry " << i << " is 0 but the input has rank "
                         << in.size();
      d = in[i];
    }
    if (d == -1) {
      if (inferred >= 0)
        return n.error() << "shape has more than one -1";
      inferred = i;
    } else {
      known *= d;
    }
    shape.push_back(d);
  }
  if (inferred >= 0)
    shape[inferred] = known == 0 ? 0 : n.inputType(0).getNumElements() / known;
  return reshapeTo(n, shape);
}

LogicalResult lowerFlatten(NodeImporter &n) {
  llvm::ArrayRef<int64_t> in = n.inputShape(0);
  int64_t rank = in.size();
  int64_t axis = n.intAttr("axis", 1);
  if (axis < -rank || axis > rank)
    return n.error() << "axis " << axis << " is out of range for rank " << rank;
  if (axis < 0)
    axis += rank;
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < rank; ++i)
    (i < axis ? outer : inner) *= in[i];
  return reshapeTo(n, {outer, inner});
}

LogicalResult lowerSqueeze(NodeImporter &n) {
  if (std::optional<SmallVector<int64_t>> inferred = shapeFromInference(n, 1))
    return reshapeTo(n, *inferred);
  FailureOr<std::optional<std::vector<int64_t>>> axes = intsInputOrAttr(n, 1, "axes", 13);
  if (failed(axes))
    return failure();
  llvm::ArrayRef<int64_t> in = n.inputShape(0);
  SmallVector<int64_t> squeezed;
  if (*axes) {
    FailureOr<SmallVector<int64_t>> normalized = normalizeAxes(n, **axes, in.size());
    if (failed(normalized))
      return failure();
    squeezed = *normalized;
  }
  SmallVector<int64_t> shape;
  for (auto [i, d] : llvm::enumerate(in)) {
    bool drop = *axes ? llvm::is_contained(squeezed, int64_t(i)) : d == 1;
    if (drop && d != 1)
      return n.error() << "cannot squeeze dimension " << i << " of size " << d;
    if (!drop)
      shape.push_back(d);
  }
  return reshapeTo(n, shape);
}

LogicalResult lowerUnsqueeze(NodeImporter &n) {
  if (std::optional<SmallVector<int64_t>> inferred = shapeFromInference(n, 1))
    return reshapeTo(n, *inferred);
  FailureOr<std::optional<std::vector<int64_t>>> axes = intsInputOrAttr(n, 1, "axes", 13);
  if (failed(axes))
    return failure();
  if (!*axes)
    return n.error() << "requires 'axes'";
  llvm::ArrayRef<int64_t> in = n.inputShape(0);
  int64_t rank = in.size() + (*axes)->size();
  FailureOr<SmallVector<int64_t>> inserted = normalizeAxes(n, **axes, rank);
  if (failed(inserted))
    return failure();
  SmallVector<int64_t> shape;
  for (int64_t i = 0, next = 0; i < rank; ++i)
    shape.push_back(llvm::is_contained(*inserted, i) ? 1 : in[next++]);
  return reshapeTo(n, shape);
}

LogicalResult lowerTranspose(NodeImporter &n) {
  int64_t rank = n.inputRank(0);
  std::vector<int64_t> perm = n.intsAttr("perm");
  if (perm.empty())
    for (int64_t i = rank - 1; i >= 0; --i)
      perm.push_back(i);
  if (int64_t(perm.size()) != rank)
    return n.error() << "perm has " << perm.size() << " entries for rank " << rank;
  Value x = n.input(0);
  if (!x)
    return failure();
  return n.setOutput(0, buildTranspose(n.builder(), n.loc(), x, perm));
}

LogicalResult lowerConcat(NodeImporter &n) {
  int64_t rank = n.inputRank(0);
  FailureOr<int64_t> axis = n.normalizeAxis(n.intAttr("axis", 0), rank);
  if (failed(axis))
    return failure();
  SmallVector<Value> inputs;
  for (unsigned i = 0; i < n.numInputs(); ++i) {
    inputs.push_back(n.input(i));
    if (!inputs.back())
      return failure();
  }
  if (inputs.size() == 1)
    return n.setOutput(0, inputs[0]);
  return n.setOutput(0, tensor::ConcatOp::create(n.builder(), n.loc(), *axis, inputs));
}

Value extractSlice(OpBuilder &b, Location loc, Value input, llvm::ArrayRef<int64_t> offsets,
                   llvm::ArrayRef<int64_t> sizes, llvm::ArrayRef<int64_t> strides) {
  auto type = cast<RankedTensorType>(input.getType());
  auto resultType = RankedTensorType::get(sizes, type.getElementType());
  // An empty result reads nothing (and any offset into an empty dim is out of bounds).
  if (llvm::is_contained(sizes, 0))
    return arith::ConstantOp::create(b, loc,
                                     DenseElementsAttr::get(resultType, ArrayRef<Attribute>()));
  auto attrs = [&](llvm::ArrayRef<int64_t> values) {
    return llvm::to_vector(llvm::map_range(
        values, [&](int64_t v) -> OpFoldResult { return b.getIndexAttr(v); }));
  };
  return tensor::ExtractSliceOp::create(b, loc, resultType, input, attrs(offsets),
                                        attrs(sizes), attrs(strides));
}

LogicalResult lowerSplit(NodeImporter &n) {
  llvm::ArrayRef<int64_t> in = n.inputShape(0);
  FailureOr<int64_t> axis = n.normalizeAxis(n.intAttr("axis", 0), in.size());
  if (failed(axis))
    return failure();
  std::vector<int64_t> sizes;
  for (unsigned i = 0; i < n.numOutputs(); ++i)
    if (std::optional<SmallVector<int64_t>> inferred = shapeFromInference(n, 1, i))
      sizes.push_back((*inferred)[*axis]);
  FailureOr<std::optional<std::vector<int64_t>>> split =
      sizes.size() == n.numOutputs() ? std::optional<std::vector<int64_t>>(sizes)
                                     : intsInputOrAttr(n, 1, "split", 13);
  if (failed(split))
    return failure();
  if (*split) {
    sizes = **split;
  } else {
    int64_t parts = n.numOutputs();
    if (in[*axis] % parts != 0)
      return n.error() << "dimension " << in[*axis] << " does not split into " << parts
                       << " equal parts";
    sizes.assign(parts, in[*axis] / parts);
  }
  if (sizes.size() != n.numOutputs())
    return n.error() << "has " << sizes.size() << " split sizes for " << n.numOutputs()
                     << " outputs";
  Value x = n.input(0);
  if (!x)
    return failure();
  SmallVector<int64_t> offsets(in.size(), 0), shape(in), strides(in.size(), 1);
  for (auto [i, size] : llvm::enumerate(sizes)) {
    shape[*axis] = size;
    if (n.hasOutput(i) &&
        failed(n.setOutput(i, extractSlice(n.builder(), n.loc(), x, offsets, shape, strides))))
      return failure();
    offsets[*axis] += size;
  }
  return success();
}

LogicalResult lowerSlice(NodeImporter &n) {
  llvm::ArrayRef<int64_t> in = n.inputShape(0);
  FailureOr<std::vector<SliceDim>> dims = resolveSlice(n, in);
  if (failed(dims))
    return failure();
  Value x = n.input(0);
  if (!x)
    return failure();
  OpBuilder &b = n.builder();
  SmallVector<int64_t> offsets, sizes, strides;
  for (const SliceDim &d : *dims) {
    // An empty dimension reads nothing: any in-bounds offset will do.
    offsets.push_back(d.size == 0 ? 0 : d.start);
    sizes.push_back(d.size);
    strides.push_back(d.step);
  }
  if (llvm::all_of(strides, [](int64_t s) { return s > 0; }))
    return n.setOutput(0, extractSlice(b, n.loc(), x, offsets, sizes, strides));
  // Negative steps: result[i] = input[start + i * step], an affine read.
  MLIRContext *context = b.getContext();
  SmallVector<AffineExpr> exprs;
  for (auto [i, d] : llvm::enumerate(*dims))
    exprs.push_back(getAffineDimExpr(i, context) * d.step + d.start);
  AffineMap inMap = AffineMap::get(in.size(), 0, exprs, context);
  AffineMap outMap = AffineMap::getMultiDimIdentityMap(in.size(), context);
  SmallVector<utils::IteratorType> iterators(in.size(), utils::IteratorType::parallel);
  Value init = emptyTensor(b, n.loc(), sizes, n.inputElementType(0));
  return n.setOutput(0, buildGeneric(b, n.loc(), init, x, {inMap, outMap}, iterators,
                                     [](OpBuilder &, Location, ValueRange args) {
                                       return args[0];
                                     }));
}

/// Rewrites negative indices along a dimension of size `dim` to `idx + dim`.
Value normalizeIndices(OpBuilder &b, Location loc, Value indices, int64_t dim) {
  Type type = cast<RankedTensorType>(indices.getType()).getElementType();
  return buildElementwise(
      b, loc, cast<RankedTensorType>(indices.getType()).getShape(), type, indices,
      [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
        Value zero = scalarConstant(nb, nloc, type, 0);
        Value negative =
            arith::CmpIOp::create(nb, nloc, arith::CmpIPredicate::slt, args[0], zero);
        Value wrapped =
            arith::AddIOp::create(nb, nloc, args[0], scalarConstant(nb, nloc, type, dim));
        return arith::SelectOp::create(nb, nloc, negative, wrapped, args[0]);
      });
}

LogicalResult lowerGather(NodeImporter &n) {
  llvm::ArrayRef<int64_t> in = n.inputShape(0);
  FailureOr<int64_t> axis = n.normalizeAxis(n.intAttr("axis", 0), in.size());
  if (failed(axis))
    return failure();
  Value table = n.input(0), indices = n.input(1);
  if (!table || !indices)
    return failure();
  OpBuilder &b = n.builder();
  indices = normalizeIndices(b, n.loc(), indices, in[*axis]);
  return n.setOutput(0, kiln::GatherOp::create(b, n.loc(), table, indices, uint64_t(*axis)));
}

/// GatherElements reads a data-dependent position along `axis`, which an indexing map
/// cannot express: each output element is selected while reducing over that axis
/// (acc = index == k ? data[.., k, ..] : acc), an exact one-hot select.
LogicalResult lowerGatherElements(NodeImporter &n) {
  llvm::ArrayRef<int64_t> dataShape = n.inputShape(0), indexShape = n.inputShape(1);
  int64_t rank = dataShape.size();
  FailureOr<int64_t> axis = n.normalizeAxis(n.intAttr("axis", 0), rank);
  if (failed(axis))
    return failure();
  if (int64_t(indexShape.size()) != rank)
    return n.error() << "indices must have the rank of the data";
  for (int64_t i = 0; i < rank; ++i)
    if (i != *axis && indexShape[i] != dataShape[i])
      return n.unsupported("indices smaller than the data along a non-gather axis");
  Value data = n.input(0), indices = n.input(1);
  if (!data || !indices)
    return failure();
  OpBuilder &b = n.builder();
  Location loc = n.loc();
  MLIRContext *context = b.getContext();
  SmallVector<AffineExpr> dataExprs;
  for (int64_t i = 0; i < rank; ++i)
    dataExprs.push_back(getAffineDimExpr(i == *axis ? rank : i, context));
  AffineMap identity = AffineMap::getMultiDimIdentityMap(rank + 1, context).getMajorSubMap(rank);
  AffineMap dataMap = AffineMap::get(rank + 1, 0, dataExprs, context);
  SmallVector<utils::IteratorType> iterators(rank, utils::IteratorType::parallel);
  iterators.push_back(utils::IteratorType::reduction);
  Type type = n.inputElementType(0);
  Type indexType = n.inputElementType(1);
  int64_t dim = dataShape[*axis];
  Value init = filledTensor(b, loc, indexShape, scalarConstant(b, loc, type, 0));
  return n.setOutput(
      0, buildGeneric(b, loc, init, {indices, data}, {identity, dataMap, identity}, iterators,
                      [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                        Value idx = args[0];
                        Value zero = scalarConstant(nb, nloc, indexType, 0);
                        Value negative = arith::CmpIOp::create(nb, nloc, arith::CmpIPredicate::slt, idx, zero);
                        Value wrapped = arith::AddIOp::create(nb, nloc, idx, scalarConstant(nb, nloc, indexType, dim));
                        idx = arith::SelectOp::create(nb, nloc, negative, wrapped, idx);
                        Value k = arith::IndexCastOp::create(nb, nloc, indexType, linalg::IndexOp::create(nb, nloc, rank));
                        Value hit = arith::CmpIOp::create(nb, nloc, arith::CmpIPredicate::eq, idx, k);
                        return arith::SelectOp::create(nb, nloc, hit, args[1], args[2]);
                      }));
}

/// Broadcasts (or passes through) the input to `shape` with one generic.
LogicalResult broadcastTo(NodeImporter &n, llvm::ArrayRef<int64_t> shape) {
  Value x = n.input(0);
  if (!x)
    return failure();
  if (n.inputShape(0) == shape)
    return n.setOutput(0, x);
  return n.setOutput(0, buildElementwise(n.builder(), n.loc(), shape, n.inputElementType(0),
                                         x, [](OpBuilder &, Location, ValueRange args) {
                                           return args[0];
                                         }));
}

LogicalResult lowerExpand(NodeImporter &n) {
  if (std::optional<SmallVector<int64_t>> inferred = shapeFromInference(n, 1)) {
    if (broadcastShapes({llvm::to_vector(n.inputShape(0)), *inferred}) != inferred)
      return n.error() << "input does not broadcast to the inferred output shape";
    return broadcastTo(n, *inferred);
  }
  FailureOr<std::vector<int64_t>> shape = n.constantInts(1, "shape");
  if (failed(shape))
    return failure();
  std::optional<SmallVector<int64_t>> result =
      broadcastShapes({llvm::to_vector(n.inputShape(0)), SmallVector<int64_t>(shape->begin(), shape->end())});
  if (!result)
    return n.error() << "input does not broadcast to the requested shape";
  return broadcastTo(n, *result);
}

LogicalResult lowerTile(NodeImporter &n) {
  llvm::ArrayRef<int64_t> in = n.inputShape(0);
  FailureOr<std::vector<int64_t>> repeats = failure();
  if (std::optional<SmallVector<int64_t>> inferred = shapeFromInference(n, 1)) {
    repeats = std::vector<int64_t>();
    for (auto [d, o] : llvm::zip_equal(in, *inferred))
      repeats->push_back(d == 0 ? 0 : o / d);
  } else {
    repeats = n.constantInts(1, "repeats");
  }
  if (failed(repeats))
    return failure();
  if (repeats->size() != in.size())
    return n.error() << "has " << repeats->size() << " repeats for rank " << in.size();
  Value x = n.input(0);
  if (!x)
    return failure();
  OpBuilder &b = n.builder();
  MLIRContext *context = b.getContext();
  SmallVector<int64_t> shape;
  SmallVector<AffineExpr> exprs;
  for (auto [i, d] : llvm::enumerate(in)) {
    shape.push_back(d * (*repeats)[i]);
    AffineExpr dim = getAffineDimExpr(i, context);
    exprs.push_back(d == 1 ? getAffineConstantExpr(0, context) : dim % d);
  }
  AffineMap inMap = AffineMap::get(in.size(), 0, exprs, context);
  AffineMap outMap = AffineMap::getMultiDimIdentityMap(in.size(), context);
  SmallVector<utils::IteratorType> iterators(in.size(), utils::IteratorType::parallel);
  Value init = emptyTensor(b, n.loc(), shape, n.inputElementType(0));
  return n.setOutput(0, buildGeneric(b, n.loc(), init, x, {inMap, outMap}, iterators,
                                     [](OpBuilder &, Location, ValueRange args) {
                                       return args[0];
                                     }));
}

/// `count` elements along `axis` read from `input` at index `read(i)` (an affine
/// function of the position i along the axis); other dimensions are copied.
Value gatherAlongAxis(OpBuilder &b, Location loc, Value input, int64_t axis, int64_t count,
                      llvm::function_ref<AffineExpr(AffineExpr)> read) {
  auto type = cast<RankedTensorType>(input.getType());
  MLIRContext *context = b.getContext();
  SmallVector<int64_t> shape(type.getShape());
  shape[axis] = count;
  SmallVector<AffineExpr> exprs;
  for (int64_t i = 0; i < type.getRank(); ++i)
    exprs.push_back(i == axis ? read(getAffineDimExpr(i, context))
                              : getAffineDimExpr(i, context));
  AffineMap inMap = AffineMap::get(type.getRank(), 0, exprs, context);
  AffineMap outMap = AffineMap::getMultiDimIdentityMap(type.getRank(), context);
  SmallVector<utils::IteratorType> iterators(type.getRank(), utils::IteratorType::parallel);
  Value init = emptyTensor(b, loc, shape, type.getElementType());
  return buildGeneric(b, loc, init, input, {inMap, outMap}, iterators,
                      [](OpBuilder &, Location, ValueRange args) { return args[0]; });
}

LogicalResult lowerPad(NodeImporter &n) {
  llvm::ArrayRef<int64_t> in = n.inputShape(0);
  int64_t rank = in.size();
  std::vector<int64_t> pads;
  double padValue = 0;
  if (n.opset() < 11) {
    pads = n.intsAttr("pads");
    padValue = n.floatAttr("value", 0);
  } else {
    FailureOr<std::vector<int64_t>> padsInput = n.constantInts(1, "pads");
    if (failed(padsInput))
      return failure();
    pads = *padsInput;
    if (n.hasInput(2)) {
      const HostTensor *value = n.constantInput(2);
      if (!value || value->size() != 1)
        return n.requiresConstant("constant_value");
      padValue = value->asDouble(0);
    }
  }
  if (int64_t(pads.size()) != 2 * rank)
    return n.error() << "has " << pads.size() << " pads for rank " << rank;
  std::string mode = n.stringAttr("mode", "constant");
  if (mode != "constant" && mode != "edge" && mode != "reflect")
    return n.unsupported("mode '" + mode + "'");
  Value x = n.input(0);
  if (!x)
    return failure();
  OpBuilder &b = n.builder();
  Location loc = n.loc();
  // Negative pads crop first.
  SmallVector<int64_t> offsets, sizes, strides(rank, 1), low, high;
  for (int64_t i = 0; i < rank; ++i) {
    int64_t lo = pads[i], hi = pads[i + rank];
    offsets.push_back(std::max<int64_t>(-lo, 0));
    sizes.push_back(in[i] - std::max<int64_t>(-lo, 0) - std::max<int64_t>(-hi, 0));
    low.push_back(std::max<int64_t>(lo, 0));
    high.push_back(std::max<int64_t>(hi, 0));
  }
  if (llvm::ArrayRef<int64_t>(sizes) != in)
    x = extractSlice(b, loc, x, offsets, sizes, strides);
  if (mode == "constant")
    return n.setOutput(0, buildPad(b, loc, x, low, high,
                                   scalarConstant(b, loc, n.inputElementType(0), padValue)));
  // edge / reflect: one axis at a time, concatenating the borders read back from the
  // data (edge repeats the outermost element, reflect mirrors without repeating it).
  bool edge = mode == "edge";
  for (int64_t axis = 0; axis < rank; ++axis) {
    int64_t size = sizes[axis];
    if (low[axis] == 0 && high[axis] == 0)
      continue;
    if (size == 0 || (!edge && (low[axis] >= size || high[axis] >= size)))
      return n.error() << "cannot " << mode << "-pad dimension " << axis << " of size "
                       << size << " by " << std::max(low[axis], high[axis]);
    SmallVector<Value> parts;
    if (low[axis] > 0)
      parts.push_back(gatherAlongAxis(b, loc, x, axis, low[axis], [&](AffineExpr i) {
        return edge ? getAffineConstantExpr(0, b.getContext()) : low[axis] - i;
      }));
    parts.push_back(x);
    if (high[axis] > 0)
      parts.push_back(gatherAlongAxis(b, loc, x, axis, high[axis], [&](AffineExpr i) {
        return edge ? getAffineConstantExpr(size - 1, b.getContext()) : size - 2 - i;
      }));
    x = tensor::ConcatOp::create(b, loc, axis, parts);
  }
  return n.setOutput(0, x);
}

/// DepthToSpace / SpaceToDepth: reshape, transpose, reshape.
LogicalResult lowerBlockShuffle(NodeImporter &n, llvm::ArrayRef<int64_t> splitShape,
                                llvm::ArrayRef<int64_t> perm,
                                llvm::ArrayRef<int64_t> resultShape) {
  Value x = n.input(0);
  if (!x)
    return failure();
  OpBuilder &b = n.builder();
  Value split = buildReshape(b, n.loc(), x, splitShape);
  Value moved = buildTranspose(b, n.loc(), split, perm);
  return n.setOutput(0, buildReshape(b, n.loc(), moved, resultShape));
}

LogicalResult lowerDepthToSpace(NodeImporter &n) {
  llvm::ArrayRef<int64_t> s = n.inputShape(0);
  int64_t bs = n.intAttr("blocksize", 0);
  if (s.size() != 4 || bs <= 0 || s[1] % (bs * bs) != 0)
    return n.error() << "expects a 4-D input whose channels divide by blocksize^2";
  int64_t c = s[1] / (bs * bs);
  SmallVector<int64_t> result = {s[0], c, s[2] * bs, s[3] * bs};
  if (n.stringAttr("mode", "DCR") == "DCR")
    return lowerBlockShuffle(n, {s[0], bs, bs, c, s[2], s[3]}, {0, 3, 4, 1, 5, 2}, result);
  return lowerBlockShuffle(n, {s[0], c, bs, bs, s[2], s[3]}, {0, 1, 4, 2, 5, 3}, result);
}

LogicalResult lowerSpaceToDepth(NodeImporter &n) {
  llvm::ArrayRef<int64_t> s = n.inputShape(0);
  int64_t bs = n.intAttr("blocksize", 0);
  if (s.size() != 4 || bs <= 0 || s[2] % bs != 0 || s[3] % bs != 0)
    return n.error() << "expects a 4-D input whose height and width divide by blocksize";
  return lowerBlockShuffle(n, {s[0], s[1], s[2] / bs, bs, s[3] / bs, bs},
                           {0, 3, 5, 1, 2, 4}, {s[0], s[1] * bs * bs, s[2] / bs, s[3] / bs});
}

/// Trilu keeps element (i, j) of each matrix when j - i >= k (upper) or <= k (lower);
/// the optional scalar k is read like a broadcast operand.
LogicalResult lowerTrilu(NodeImporter &n) {
  bool upper = n.intAttr("upper", 1) != 0;
  int64_t rank = n.inputRank(0);
  if (rank < 2)
    return n.error() << "expects at least 2 dimensions";
  SmallVector<Value> operands = {n.input(0)};
  if (n.hasInput(1))
    operands.push_back(n.input(1));
  if (llvm::is_contained(operands, Value()))
    return failure();
  Type type = n.inputElementType(0);
  return n.setOutput(
      0, buildElementwise(n.builder(), n.loc(), n.inputShape(0), type, operands,
                          [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
                            Value i = arith::IndexCastOp::create(b, loc, b.getI64Type(), linalg::IndexOp::create(b, loc, rank - 2));
                            Value j = arith::IndexCastOp::create(b, loc, b.getI64Type(), linalg::IndexOp::create(b, loc, rank - 1));
                            Value diff = arith::SubIOp::create(b, loc, j, i);
                            Value k = args.size() > 1 ? args[1] : scalarConstant(b, loc, b.getI64Type(), 0);
                            Value keep = arith::CmpIOp::create(
                                b, loc, upper ? arith::CmpIPredicate::sge : arith::CmpIPredicate::sle,
                                diff, k);
                            return arith::SelectOp::create(b, loc, keep, args[0],
                                                           scalarConstant(b, loc, type, 0));
                          }));
}

LogicalResult lowerOneHot(NodeImporter &n) {
  FailureOr<std::vector<int64_t>> depthInput = n.constantInts(1, "depth");
  if (failed(depthInput))
    return failure();
  int64_t depth = depthInput->at(0);
  llvm::ArrayRef<int64_t> in = n.inputShape(0);
  int64_t rank = in.size() + 1;
  FailureOr<int64_t> axis = n.normalizeAxis(n.intAttr("axis", -1), rank);
  if (failed(axis))
    return failure();
  Value indices = n.input(0), values = n.input(2);
  if (!indices || !values)
    return failure();
  OpBuilder &b = n.builder();
  MLIRContext *context = b.getContext();
  SmallVector<int64_t> shape(in);
  shape.insert(shape.begin() + *axis, depth);
  SmallVector<AffineExpr> indexExprs;
  for (int64_t i = 0; i < rank; ++i)
    if (i != *axis)
      indexExprs.push_back(getAffineDimExpr(i, context));
  AffineMap indexMap = AffineMap::get(rank, 0, indexExprs, context);
  AffineMap offMap = AffineMap::get(rank, 0, getAffineConstantExpr(0, context), context);
  AffineMap onMap = AffineMap::get(rank, 0, getAffineConstantExpr(1, context), context);
  AffineMap outMap = AffineMap::getMultiDimIdentityMap(rank, context);
  SmallVector<utils::IteratorType> iterators(rank, utils::IteratorType::parallel);
  Type type = n.inputElementType(2);
  bool indexUnsigned = n.inputIsUnsigned(0);
  Value init = emptyTensor(b, n.loc(), shape, type);
  return n.setOutput(
      0, buildGeneric(b, n.loc(), init, {indices, values, values},
                      {indexMap, offMap, onMap, outMap}, iterators,
                      [&](OpBuilder &nb, Location loc, ValueRange args) -> Value {
                        // Negative indices count from the end of the depth.
                        Value idx = convertScalar(nb, loc, args[0], nb.getI64Type(),
                                                  indexUnsigned, false);
                        Value zero = scalarConstant(nb, loc, nb.getI64Type(), 0);
                        Value negative = arith::CmpIOp::create(nb, loc, arith::CmpIPredicate::slt, idx, zero);
                        Value wrapped = arith::AddIOp::create(nb, loc, idx, scalarConstant(nb, loc, nb.getI64Type(), depth));
                        idx = arith::SelectOp::create(nb, loc, negative, wrapped, idx);
                        Value position = arith::IndexCastOp::create(
                            nb, loc, nb.getI64Type(), linalg::IndexOp::create(nb, loc, *axis));
                        Value hit = arith::CmpIOp::create(nb, loc, arith::CmpIPredicate::eq, idx, position);
                        return arith::SelectOp::create(nb, loc, hit, args[2], args[1]);
                      }));
}

} // namespace

FailureOr<std::vector<SliceDim>> kiln::onnx_import::resolveSlice(NodeImporter &n,
                                                                 llvm::ArrayRef<int64_t> shape) {
  int64_t rank = shape.size();
  std::vector<int64_t> starts, ends, axes, steps;
  if (n.opset() < 10) {
    starts = n.intsAttr("starts");
    ends = n.intsAttr("ends");
    axes = n.intsAttr("axes");
  } else {
    FailureOr<std::vector<int64_t>> s = n.constantInts(1, "starts");
    if (failed(s))
      return failure();
    FailureOr<std::vector<int64_t>> e = n.constantInts(2, "ends");
    if (failed(e))
      return failure();
    starts = *s;
    ends = *e;
    if (n.hasInput(3)) {
      FailureOr<std::vector<int64_t>> a = n.constantInts(3, "axes");
      if (failed(a))
        return failure();
      axes = *a;
    }
    if (n.hasInput(4)) {
      FailureOr<std::vector<int64_t>> st = n.constantInts(4, "steps");
      if (failed(st))
        return failure();
      steps = *st;
    }
  }
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i)
      axes.push_back(i);
  if (steps.empty())
    steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() ||
      steps.size() != starts.size()) {
    n.error() << "starts, ends, axes and steps differ in length";
    return failure();
  }
  std::vector<SliceDim> dims;
  for (int64_t d : shape)
    dims.push_back({0, 1, d});
  for (size_t i = 0; i < starts.size(); ++i) {
    FailureOr<int64_t> axis = n.normalizeAxis(axes[i], rank);
    if (failed(axis))
      return failure();
    int64_t dim = shape[*axis], step = steps[i];
    if (step == 0) {
      n.error() << "step must not be zero";
      return failure();
    }
    // ONNX clamping: negatives count from the end; positive steps clamp to [0, dim],
    // negative steps to [-1, dim - 1].
    int64_t start = starts[i] < 0 ? starts[i] + dim : starts[i];
    int64_t end = ends[i] < 0 ? ends[i] + dim : ends[i];
    if (step > 0) {
      start = std::clamp<int64_t>(start, 0, dim);
      end = std::clamp<int64_t>(end, 0, dim);
    } else {
      start = std::clamp<int64_t>(start, 0, dim - 1);
      end = std::clamp<int64_t>(end, -1, dim - 1);
    }
    int64_t size = step > 0 ? (end - start + step - 1) / step : (start - end - step - 1) / -step;
    dims[*axis] = {start, step, std::max<int64_t>(size, 0)};
  }
  return dims;
}

void kiln::onnx_import::addTensorLowerings(OpLoweringTable &table) {
  table["Reshape"] = lowerReshape;
  table["Flatten"] = lowerFlatten;
  table["Squeeze"] = lowerSqueeze;
  table["Unsqueeze"] = lowerUnsqueeze;
  table["Transpose"] = lowerTranspose;
  table["Concat"] = lowerConcat;
  table["Split"] = lowerSplit;
  table["Slice"] = lowerSlice;
  table["Gather"] = lowerGather;
  table["GatherElements"] = lowerGatherElements;
  table["Expand"] = lowerExpand;
  table["Tile"] = lowerTile;
  table["Pad"] = lowerPad;
  table["DepthToSpace"] = lowerDepthToSpace;
  table["SpaceToDepth"] = lowerSpaceToDepth;
  table["Trilu"] = lowerTrilu;
  table["OneHot"] = lowerOneHot;
}
