// ONNX resampling: Resize and Upsample. The ONNX reference interpolates one axis at a
// time, so each resized axis is lowered on its own (last axis first, as the reference
// recurses): per output position o, linalg.generic bodies compute the source coordinate
// (from constant or run-time scales and roi, in f64 like the reference) and from it the
// indices and weights of the taps (1 nearest, 2 linear, 4 cubic) as [O, taps] tensors;
// kiln.gather reads the taps and a reduction over them applies the weights.
#include "frontends/onnx/OnnxLinalgBuilders.h"
#include "frontends/onnx/OnnxNodeImporter.h"

#include "dialects/Kiln/KilnDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include <cmath>

using namespace mlir;
using namespace kiln::onnx_import;

namespace {

/// The attributes that decide how a Resize samples.
struct ResizeMode {
  std::string mode;       // nearest, linear, cubic
  std::string transform;  // coordinate_transformation_mode
  std::string nearest;    // nearest_mode
  double cubicA = -0.75;
  bool excludeOutside = false;
  double extrapolation = 0;

  int64_t taps() const { return mode == "nearest" ? 1 : mode == "linear" ? 2 : 4; }
};

/// A per-axis scalar: known at import time, or element `index` of a 1-D run-time tensor.
struct ScalarSource {
  double value = 0;
  Value tensor;
  int64_t index = 0;
};

/// One resized axis: `inSize` elements become `outSize` under `scale` (and the roi's
/// start and end, for tf_crop_and_resize).
struct AxisPlan {
  int64_t axis = 0, inSize = 0, outSize = 0;
  ScalarSource scale, roiStart, roiEnd;
};

Value f64Constant(OpBuilder &b, Location loc, double value) {
  return scalarConstant(b, loc, b.getF64Type(), value);
}

/// The source coordinate of output position `x` (f64) along an axis, and whether it lies
/// inside the input (only tf_crop_and_resize can leave it; elsewhere null).
std::pair<Value, Value> sourceCoordinate(OpBuilder &b, Location loc, const ResizeMode &m,
                                         const AxisPlan &a, Value x, Value scale,
                                         Value roiStart, Value roiEnd) {
  auto c = [&](double v) { return f64Constant(b, loc, v); };
  auto add = [&](Value l, Value r) { return arith::AddFOp::create(b, loc, l, r).getResult(); };
  auto sub = [&](Value l, Value r) { return arith::SubFOp::create(b, loc, l, r).getResult(); };
  auto mul = [&](Value l, Value r) { return arith::MulFOp::create(b, loc, l, r).getResult(); };
  auto div = [&](Value l, Value r) { return arith::DivFOp::create(b, loc, l, r).getResult(); };
  // The reference's output length is scale * input length, a float.
  Value inSize = c(double(a.inSize)), lastIn = c(double(a.inSize - 1));
  Value outWidth = mul(scale, inSize);
  Value isSingle = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, outWidth, c(1));
  auto select = [&](Value cond, Value t, Value f) {
    return arith::SelectOp::create(b, loc, cond, t, f).getResult();
  };
  Value halfPixel = sub(div(add(x, c(0.5)), scale), c(0.5));
  if (m.transform == "half_pixel")
    return {halfPixel, Value()};
  if (m.transform == "pytorch_half_pixel")
    return {select(isSingle, c(-0.5), halfPixel), Value()};
  if (m.transform == "tf_half_pixel_for_nn")
    return {div(add(x, c(0.5)), scale), Value()};
  if (m.transform == "asymmetric")
    return {div(x, scale), Value()};
  if (m.transform == "align_corners")
    return {select(isSingle, c(0), div(mul(x, lastIn), sub(outWidth, c(1)))), Value()};
  // tf_crop_and_resize: the roi [start, end] of the input, in normalized coordinates.
  Value extent = mul(sub(roiEnd, roiStart), lastIn);
  Value spread = select(isSingle, div(extent, c(2)), div(mul(x, extent), sub(outWidth, c(1))));
  Value coordinate = add(spread, mul(roiStart, lastIn));
  Value aboveStart = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGE, coordinate, c(0));
  Value belowEnd = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLE, coordinate, lastIn);
  return {coordinate, arith::AndIOp::create(b, loc, aboveStart, belowEnd)};
}

/// What a tap computation sees at output position (o, k): the source coordinate, the tap
/// number k (i64) and whether the coordinate is inside the input (null when always).
using TapFn = llvm::function_ref<Value(OpBuilder &, Location, Value coordinate, Value tap,
                                       Value inside)>;

/// An [outSize] (one tap) or [outSize, taps] tensor of `type` whose elements `fn` computes
/// from the source coordinate of each output position.
Value buildTapTensor(OpBuilder &b, Location loc, const ResizeMode &m, const AxisPlan &a,
                     int64_t taps, Type type, TapFn fn) {
  MLIRContext *context = b.getContext();
  SmallVector<int64_t> shape = {a.outSize};
  if (taps > 1)
    shape.push_back(taps);
  int64_t loops = shape.size();
  SmallVector<Value> inputs;
  SmallVector<AffineMap> maps;
  SmallVector<const ScalarSource *> sources = {&a.scale};
  if (m.transform == "tf_crop_and_resize")
    sources.append({&a.roiStart, &a.roiEnd});
  for (const ScalarSource *source : sources) {
    if (!source->tensor)
      continue;
    inputs.push_back(source->tensor);
    maps.push_back(AffineMap::get(loops, 0, getAffineConstantExpr(source->index, context), context));
  }
  maps.push_back(AffineMap::getMultiDimIdentityMap(loops, context));
  SmallVector<utils::IteratorType> iterators(loops, utils::IteratorType::parallel);
  Value init = emptyTensor(b, loc, shape, type);
  return buildGeneric(
      b, loc, init, inputs, maps, iterators,
      [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
        Type f64 = nb.getF64Type();
        unsigned next = 0;
        SmallVector<Value> scalars;
        for (const ScalarSource *source : sources)
          scalars.push_back(source->tensor
                                ? convertScalar(nb, nloc, args[next++], f64, false, false)
                                : f64Constant(nb, nloc, source->value));
        scalars.resize(3);
        Value position = arith::IndexCastOp::create(nb, nloc, nb.getI64Type(),
                                                    linalg::IndexOp::create(nb, nloc, 0));
        Value x = arith::SIToFPOp::create(nb, nloc, f64, position);
        auto [coordinate, inside] =
            sourceCoordinate(nb, nloc, m, a, x, scalars[0], scalars[1], scalars[2]);
        Value tap = taps > 1 ? arith::IndexCastOp::create(nb, nloc, nb.getI64Type(),
                                                          linalg::IndexOp::create(nb, nloc, 1))
                                   .getResult()
                             : scalarConstant(nb, nloc, nb.getI64Type(), 0);
        return fn(nb, nloc, coordinate, tap, inside);
      });
}

/// The input index each tap reads, clamped to the input (the reference pads by
/// repeating the edges).
Value tapIndex(OpBuilder &b, Location loc, const ResizeMode &m, const AxisPlan &a,
               Value coordinate, Value tap) {
  Type i64 = b.getI64Type();
  Value floor = math::FloorOp::create(b, loc, coordinate);
  Value index;
  if (m.mode == "nearest") {
    Value fraction = arith::SubFOp::create(b, loc, coordinate, floor);
    Value half = f64Constant(b, loc, 0.5), zero = f64Constant(b, loc, 0);
    // Whether to take the element after floor(x).
    Value up;
    if (m.nearest == "round_prefer_floor")
      up = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, fraction, half);
    else if (m.nearest == "round_prefer_ceil")
      up = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGE, fraction, half);
    else if (m.nearest == "ceil")
      up = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, fraction, zero);
    else // floor
      up = arith::ConstantOp::create(b, loc, b.getBoolAttr(false));
    index = arith::FPToSIOp::create(b, loc, i64, floor);
    index = arith::AddIOp::create(b, loc, index, arith::ExtUIOp::create(b, loc, i64, up));
  } else {
    // Linear reads floor(x) and floor(x) + 1, cubic floor(x) - 1 .. floor(x) + 2.
    int64_t first = m.mode == "linear" ? 0 : -1;
    index = arith::FPToSIOp::create(b, loc, i64, floor);
    index = arith::AddIOp::create(b, loc, index, tap);
    index = arith::AddIOp::create(b, loc, index, scalarConstant(b, loc, i64, first));
  }
  index = arith::MaxSIOp::create(b, loc, index, scalarConstant(b, loc, i64, 0));
  return arith::MinSIOp::create(b, loc, index, scalarConstant(b, loc, i64, a.inSize - 1));
}

/// The weight of each tap (linear and cubic), converted to `type`.
Value tapWeight(OpBuilder &b, Location loc, const ResizeMode &m, const AxisPlan &a,
                Value coordinate, Value tap, Type type) {
  auto c = [&](double v) { return f64Constant(b, loc, v); };
  auto add = [&](Value l, Value r) { return arith::AddFOp::create(b, loc, l, r).getResult(); };
  auto sub = [&](Value l, Value r) { return arith::SubFOp::create(b, loc, l, r).getResult(); };
  auto mul = [&](Value l, Value r) { return arith::MulFOp::create(b, loc, l, r).getResult(); };
  Type i64 = b.getI64Type();
  Value floor = math::FloorOp::create(b, loc, coordinate);
  Value r = sub(coordinate, floor);
  SmallVector<Value> coeffs;
  if (m.mode == "linear") {
    coeffs = {sub(c(1), r), r};
  } else {
    // Keys' cubic convolution with coefficient A, at distances 1 + r, r, 1 - r, 2 - r.
    double A = m.cubicA;
    auto near = [&](Value t) { // |t| <= 1
      return add(mul(mul(sub(mul(c(A + 2), t), c(A + 3)), t), t), c(1));
    };
    auto far = [&](Value t) { // 1 < |t| < 2
      return sub(mul(add(mul(sub(mul(c(A), t), c(5 * A)), t), c(8 * A)), t), c(4 * A));
    };
    Value oneMinus = sub(c(1), r);
    coeffs = {far(add(r, c(1))), near(r), near(oneMinus), far(add(oneMinus, c(1)))};
    if (m.excludeOutside) {
      // Taps outside the input weigh nothing; the others are renormalized.
      Value base = arith::SubIOp::create(b, loc, arith::FPToSIOp::create(b, loc, i64, floor),
                                         scalarConstant(b, loc, i64, 1));
      Value sum = c(0);
      for (size_t k = 0; k < coeffs.size(); ++k) {
        Value &coeff = coeffs[k];
        Value index = arith::AddIOp::create(b, loc, base, scalarConstant(b, loc, i64, k));
        Value low = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, index,
                                          scalarConstant(b, loc, i64, 0));
        Value high = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, index,
                                           scalarConstant(b, loc, i64, a.inSize));
        coeff = arith::SelectOp::create(b, loc, arith::AndIOp::create(b, loc, low, high),
                                        coeff, c(0));
        sum = add(sum, coeff);
      }
      for (Value &coeff : coeffs)
        coeff = arith::DivFOp::create(b, loc, coeff, sum);
    }
  }
  Value weight = coeffs.back();
  for (int64_t k = coeffs.size() - 2; k >= 0; --k) {
    Value isTap = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, tap,
                                        scalarConstant(b, loc, i64, k));
    weight = arith::SelectOp::create(b, loc, isTap, coeffs[k], weight);
  }
  return convertScalar(b, loc, weight, type, false, false);
}

/// Resamples `x` along one axis.
Value resizeAxis(OpBuilder &b, Location loc, const ResizeMode &m, const AxisPlan &a, Value x) {
  MLIRContext *context = b.getContext();
  auto type = cast<RankedTensorType>(x.getType());
  Type element = type.getElementType();
  int64_t rank = type.getRank(), taps = m.taps();
  Value indices = buildTapTensor(
      b, loc, m, a, taps, b.getI64Type(),
      [&](OpBuilder &nb, Location nloc, Value coordinate, Value tap, Value) {
        return tapIndex(nb, nloc, m, a, coordinate, tap);
      });
  Value result = kiln::GatherOp::create(b, loc, x, indices, uint64_t(a.axis));
  if (taps > 1) {
    // result[.., o, ..] = sum_k gathered[.., o, k, ..] * weights[o, k]
    Value weights = buildTapTensor(
        b, loc, m, a, taps, element,
        [&](OpBuilder &nb, Location nloc, Value coordinate, Value tap, Value) {
          return tapWeight(nb, nloc, m, a, coordinate, tap, element);
        });
    SmallVector<AffineExpr> gatheredExprs, outExprs;
    AffineExpr k = getAffineDimExpr(rank, context);
    for (int64_t i = 0; i < rank; ++i) {
      gatheredExprs.push_back(getAffineDimExpr(i, context));
      if (i == a.axis)
        gatheredExprs.push_back(k);
      outExprs.push_back(getAffineDimExpr(i, context));
    }
    AffineMap weightMap =
        AffineMap::get(rank + 1, 0, {getAffineDimExpr(a.axis, context), k}, context);
    SmallVector<utils::IteratorType> iterators(rank, utils::IteratorType::parallel);
    iterators.push_back(utils::IteratorType::reduction);
    SmallVector<int64_t> shape(type.getShape());
    shape[a.axis] = a.outSize;
    Value init = filledTensor(b, loc, shape, scalarConstant(b, loc, element, 0));
    result = buildGeneric(
        b, loc, init, {result, weights},
        {AffineMap::get(rank + 1, 0, gatheredExprs, context), weightMap,
         AffineMap::get(rank + 1, 0, outExprs, context)},
        iterators, [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
          return arith::AddFOp::create(nb, nloc, arith::MulFOp::create(nb, nloc, args[0], args[1]),
                                       args[2]);
        });
  }
  if (m.transform != "tf_crop_and_resize")
    return result;
  // Output positions whose source lies outside the input take extrapolation_value.
  Value inside = buildTapTensor(b, loc, m, a, 1, b.getI1Type(),
                                [](OpBuilder &, Location, Value, Value, Value inside) {
                                  return inside;
                                });
  SmallVector<int64_t> maskShape(rank, 1);
  maskShape[a.axis] = a.outSize;
  inside = buildReshape(b, loc, inside, maskShape);
  auto resultType = cast<RankedTensorType>(result.getType());
  return buildElementwise(b, loc, resultType.getShape(), element, {result, inside},
                          [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                            return arith::SelectOp::create(
                                nb, nloc, args[1], args[0],
                                scalarConstant(nb, nloc, element, m.extrapolation));
                          });
}

/// A 1-D float input (scales or roi) as per-axis scalar sources: import-time values when
/// it is constant, else reads of the run-time tensor.
FailureOr<SmallVector<ScalarSource>> scalarSources(NodeImporter &n, unsigned i, int64_t count) {
  if (n.inputRank(i) != 1 || n.inputShape(i)[0] != count)
    return n.error() << "input " << i << " must have " << count << " elements", failure();
  SmallVector<ScalarSource> sources(count);
  if (const HostTensor *constant = n.constantInput(i)) {
    for (int64_t j = 0; j < count; ++j)
      sources[j].value = constant->asDouble(j);
    return sources;
  }
  if (!isa<FloatType>(n.inputElementType(i)))
    return (void)n.unsupported("a run-time input " + std::to_string(i) + " of type " +
                               onnxTypeName(n.inputOnnxType(i))),
           failure();
  Value tensor = n.input(i);
  if (!tensor)
    return failure();
  for (int64_t j = 0; j < count; ++j)
    sources[j] = {0, tensor, j};
  return sources;
}

/// Resize (opset 10 / 11+) and Upsample: `scalesInput` and `sizesInput` are the input
/// numbers of scales and sizes (-1: none), `roiInput` that of roi.
LogicalResult lowerResample(NodeImporter &n, ResizeMode m, int roiInput, int scalesInput,
                            int sizesInput) {
  llvm::ArrayRef<int64_t> in = n.inputShape(0);
  int64_t rank = in.size();
  if (m.mode == "bilinear" || m.mode == "trilinear")
    m.mode = "linear";
  if (m.mode != "nearest" && m.mode != "linear" && m.mode != "cubic")
    return n.unsupported("mode '" + m.mode + "'");
  if (m.nearest != "round_prefer_floor" && m.nearest != "round_prefer_ceil" &&
      m.nearest != "floor" && m.nearest != "ceil")
    return n.unsupported("nearest_mode '" + m.nearest + "'");
  static const char *const transforms[] = {"half_pixel",   "pytorch_half_pixel",
                                           "align_corners", "asymmetric",
                                           "tf_half_pixel_for_nn", "tf_crop_and_resize"};
  if (!llvm::is_contained(transforms, m.transform))
    return n.unsupported("coordinate_transformation_mode '" + m.transform + "'");
  if (n.intAttr("antialias", 0) != 0)
    return n.unsupported("antialias");
  if (n.hasAttr("axes"))
    return n.unsupported("the 'axes' attribute");
  if (n.stringAttr("keep_aspect_ratio_policy", "stretch") != "stretch")
    return n.unsupported("keep_aspect_ratio_policy '" +
                         n.stringAttr("keep_aspect_ratio_policy", "") + "'");
  if (m.mode != "nearest" && !isa<FloatType>(n.inputElementType(0)))
    return n.unsupported(m.mode + " resizing of " + onnxTypeName(n.inputOnnxType(0)));

  // Scales come from `scales` (a constant or read at run time) or are sizes / input.
  bool useScales = n.opset() < 9 ||
                   (scalesInput >= 0 && n.hasInput(scalesInput) &&
                    n.inputType(scalesInput).getNumElements() > 0);
  bool useSizes = !useScales && sizesInput >= 0 && n.hasInput(sizesInput);
  if (!useScales && !useSizes)
    return n.error() << "needs either scales or sizes";
  SmallVector<int64_t> outShape;
  if (std::optional<SmallVector<int64_t>> inferred = n.inferredOutputShape(0))
    outShape = *inferred;
  SmallVector<ScalarSource> scales(rank);
  if (n.opset() < 9) {
    std::vector<float> attr = n.floatsAttr("scales");
    if (int64_t(attr.size()) != rank)
      return n.error() << "scales attribute must have " << rank << " elements";
    for (int64_t i = 0; i < rank; ++i)
      scales[i].value = attr[i];
  } else if (useScales) {
    FailureOr<SmallVector<ScalarSource>> sources = scalarSources(n, scalesInput, rank);
    if (failed(sources))
      return failure();
    scales = *sources;
  } else if (const HostTensor *sizes = n.constantInput(sizesInput)) {
    if (sizes->size() != rank)
      return n.error() << "sizes must have " << rank << " elements";
    outShape.clear();
    for (int64_t i = 0; i < rank; ++i)
      outShape.push_back(sizes->asInt(i));
  } else if (outShape.empty()) {
    return n.requiresConstant("sizes");
  }
  if (outShape.empty()) {
    if (llvm::any_of(scales, [](const ScalarSource &s) { return bool(s.tensor); }))
      return n.requiresConstant("scales");
    for (int64_t i = 0; i < rank; ++i)
      outShape.push_back(int64_t(std::floor(double(in[i]) * scales[i].value)));
  }
  if (int64_t(outShape.size()) != rank)
    return n.error() << "output rank does not match the input";
  if (useSizes)
    for (int64_t i = 0; i < rank; ++i)
      scales[i].value = double(outShape[i]) / double(in[i]);

  SmallVector<ScalarSource> roi(2 * rank);
  if (m.transform == "tf_crop_and_resize") {
    if (roiInput < 0 || !n.hasInput(roiInput))
      return n.error() << "tf_crop_and_resize needs a roi";
    FailureOr<SmallVector<ScalarSource>> sources = scalarSources(n, roiInput, 2 * rank);
    if (failed(sources))
      return failure();
    roi = *sources;
  }

  Value x = n.input(0);
  if (!x)
    return failure();
  OpBuilder &b = n.builder();
  for (int64_t axis = rank - 1; axis >= 0; --axis) {
    if (in[axis] == 0 || outShape[axis] == 0)
      return n.unsupported("resizing an empty dimension");
    AxisPlan a{axis, in[axis], outShape[axis], scales[axis], roi[axis], roi[axis + rank]};
    // A one-element axis stays as it is; so does an axis whose constant scale is 1 and
    // whose transformation maps each position to itself.
    bool identity = a.inSize == 1 && a.outSize == 1;
    if (!a.scale.tensor && a.scale.value == 1 && a.inSize == a.outSize &&
        m.transform != "tf_crop_and_resize" && m.transform != "tf_half_pixel_for_nn")
      identity = true;
    if (!identity)
      x = resizeAxis(b, n.loc(), m, a, x);
  }
  return n.setOutput(0, x);
}

LogicalResult lowerResize(NodeImporter &n) {
  ResizeMode m;
  m.mode = n.stringAttr("mode", "nearest");
  if (n.opset() < 11) {
    // Resize-10 is Upsample-9 under a new name: asymmetric coordinates, nearest floors.
    m.transform = "asymmetric";
    m.nearest = "floor";
    return lowerResample(n, m, -1, 1, -1);
  }
  m.transform = n.stringAttr("coordinate_transformation_mode", "half_pixel");
  m.nearest = n.stringAttr("nearest_mode", "round_prefer_floor");
  m.cubicA = n.floatAttr("cubic_coeff_a", -0.75f);
  m.excludeOutside = n.intAttr("exclude_outside", 0) != 0;
  m.extrapolation = n.floatAttr("extrapolation_value", 0.0f);
  return lowerResample(n, m, 1, 2, 3);
}

LogicalResult lowerUpsample(NodeImporter &n) {
  ResizeMode m;
  m.mode = n.stringAttr("mode", "nearest");
  m.transform = "asymmetric";
  m.nearest = "floor";
  return lowerResample(n, m, -1, 1, -1);
}

} // namespace

void kiln::onnx_import::addResizeLowerings(OpLoweringTable &table) {
  table["Resize"] = lowerResize;
  table["Upsample"] = lowerUpsample;
}
