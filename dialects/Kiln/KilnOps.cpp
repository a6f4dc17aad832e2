// Verifiers, result-type inference, folders and canonicalizations of kiln ops.
#include "dialects/Kiln/KilnDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/BitVector.h"
#include "llvm/ADT/DenseMap.h"

using namespace mlir;
using namespace kiln;

#define GET_OP_CLASSES
#include "dialects/Kiln/KilnOps.cpp.inc"

namespace {

/// A shape as `[2, ?, 4]`, for diagnostics.
std::string shapeText(ArrayRef<int64_t> shape) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "[";
  llvm::interleaveComma(shape, os, [&](int64_t d) {
    if (ShapedType::isDynamic(d))
      os << "?";
    else
      os << d;
  });
  os << "]";
  return text;
}

/// Two dimensions conflict only when both are known and differ.
bool dimsConflict(int64_t a, int64_t b) {
  return !ShapedType::isDynamic(a) && !ShapedType::isDynamic(b) && a != b;
}

bool shapesConflict(ArrayRef<int64_t> a, ArrayRef<int64_t> b) {
  if (a.size() != b.size())
    return true;
  for (auto [x, y] : llvm::zip_equal(a, b))
    if (dimsConflict(x, y))
      return true;
  return false;
}

/// Emits an error at `loc` prefixed like an op verifier's (`'kiln.x' op ...`), so that
/// diagnostics from type inference and from verifiers read alike. Inference may run
/// without a location (then errors are only reported as failure).
struct OpErrorEmitter {
  std::optional<Location> loc;
  StringRef opName;

  InFlightDiagnostic operator()() const {
    if (!loc)
      return InFlightDiagnostic();
    return mlir::emitError(*loc) << "'" << opName << "' op ";
  }
};

/// A packed tensor's innermost dimension must hold whole blocks of its scheme.
LogicalResult verifyPackedShape(RankedTensorType type, QuantType quant,
                                function_ref<InFlightDiagnostic()> emitError) {
  if (type.getRank() == 0)
    return emitError() << "a quantized tensor needs at least one dimension, got a scalar";
  int64_t inner = type.getShape().back();
  int64_t block = quant.getBlockElements();
  if (!ShapedType::isDynamic(inner) && inner % block != 0)
    return emitError() << "innermost dimension " << inner << " is not a multiple of the "
                       << stringifyQuantScheme(quant.getScheme()) << " block size " << block;
  int64_t interleave = quant.getInterleave();
  if (interleave > 1) {
    int64_t rows = type.getRank() >= 2 ? type.getShape()[type.getRank() - 2] : 1;
    if (type.getRank() < 2 || (!ShapedType::isDynamic(rows) && rows % interleave != 0))
      return emitError() << stringifyQuantScheme(quant.getScheme()) << " interleaves "
                         << interleave << " rows: the second-innermost dimension must be a "
                         << "multiple of " << interleave << ", got " << type;
  }
  return success();
}

} // namespace

//===----------------------------------------------------------------------===//
// WeightOp
//===----------------------------------------------------------------------===//

LogicalResult WeightOp::verify() {
  if (getName().empty())
    return emitOpError("needs a non-empty name");
  if (getSource().empty())
    return emitOpError("needs a non-empty source file");
  auto type = cast<RankedTensorType>(getType());
  Type element = type.getElementType();
  std::optional<StringRef> source = getSourceScheme();
  bool fromFloat = source && (*source == "f32" || *source == "f16" || *source == "bf16");
  if (std::optional<ArrayRef<int64_t>> permutation = getPermutation()) {
    if (isa<QuantType>(element) && !fromFloat)
      return emitOpError("cannot permute packed (!kiln.quant) elements (only a float "
                         "source_scheme's elements, before they are packed)");
    SmallVector<bool> seen(type.getRank(), false);
    if (static_cast<int64_t>(permutation->size()) != type.getRank())
      return emitOpError("has a permutation of ") << permutation->size()
             << " dimensions for a tensor of rank " << type.getRank();
    for (int64_t d : *permutation) {
      if (d < 0 || d >= type.getRank() || seen[d])
        return emitOpError("has a permutation that is not one of [0, ")
               << type.getRank() << ")";
      seen[d] = true;
    }
  }
  if (source) {
    auto quant = dyn_cast<QuantType>(element);
    std::optional<QuantScheme> from = symbolizeQuantScheme(*source);
    // Float bytes are packed into q8_0 or q4_0 (or their interleaved layouts).
    bool packsFloat = fromFloat && quant &&
                      llvm::is_contained({QuantScheme::q8_0, QuantScheme::q4_0,
                                          QuantScheme::q8_0x16, QuantScheme::q4_0x16,
                                          QuantScheme::q4_1},
                                         quant.getScheme());
    if (!packsFloat && (!quant || !from || QuantType::interleaved(*from) != quant.getScheme()))
      return emitOpError("can convert only q4_0, q8_0, q5_0, q4_k and q6_k bytes into their "
                         "interleaved layouts (q4_0x16, q8_0x16, q5_0x16, q4_kx16, "
                         "q6_kx16), or f32/f16/bf16 bytes into q8_0, q4_0, q4_1, q8_0x16 "
                         "or q4_0x16, got source_scheme '")
             << *source << "' for " << type;
  }
  if (std::optional<ArrayRef<float>> scale = getInputScale()) {
    // The writer scales floats: f32 as stored, or a float source before packing.
    if (!element.isF32() && !fromFloat)
      return emitOpError("can scale only f32 weights or float bytes it packs "
                         "(source_scheme f32, f16 or bf16), got ")
             << type;
    if (type.getRank() == 0 || static_cast<int64_t>(scale->size()) != type.getShape().back())
      return emitOpError("has ") << scale->size() << " input_scale values for " << type
                                 << " (expected one per element of the innermost dimension)";
  }
  if (auto quant = dyn_cast<QuantType>(element))
    return verifyPackedShape(type, quant, [&] { return emitOpError(); });
  if (!isa<FloatType, IntegerType>(element))
    return emitOpError("expects a float, integer or !kiln.quant element type, got ")
           << element;
  return success();
}

//===----------------------------------------------------------------------===//
// DequantizeOp
//===----------------------------------------------------------------------===//

LogicalResult DequantizeOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location, ValueRange operands,
    DictionaryAttr attributes, OpaqueProperties properties, RegionRange regions,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  Adaptor adaptor(operands, attributes, properties, regions);
  OpErrorEmitter emitError{location, getOperationName()};
  auto input = cast<RankedTensorType>(adaptor.getInput().getType());
  auto quant = dyn_cast<QuantType>(input.getElementType());
  if (!quant)
    return emitError() << "expects an input with a !kiln.quant element type, got "
                       << input;
  if (failed(verifyPackedShape(input, quant, emitError)))
    return failure();

  StringRef scheme = stringifyQuantScheme(quant.getScheme());
  Value scales = adaptor.getScales();
  Value zeroPoints = adaptor.getZeroPoints();
  if (!quant.isGroupWise()) {
    if (scales || zeroPoints)
      return emitError() << scheme
                         << " keeps its scales inside its blocks; it takes no scales "
                            "or zero_points operand";
  } else {
    if (!scales)
      return emitError() << "group-wise " << scheme << " needs a scales operand";
    SmallVector<int64_t> expected(input.getShape());
    if (!ShapedType::isDynamic(expected.back()))
      expected.back() /= quant.getGroupSize();
    auto scalesType = cast<RankedTensorType>(scales.getType());
    if (shapesConflict(scalesType.getShape(), expected))
      return emitError() << "expects scales of shape " << shapeText(expected)
                         << " (one per group of " << quant.getGroupSize() << "), got "
                         << shapeText(scalesType.getShape());
    if (zeroPoints) {
      auto zeroType = cast<RankedTensorType>(zeroPoints.getType());
      if (shapesConflict(zeroType.getShape(), expected))
        return emitError() << "expects zero_points shaped like scales "
                           << shapeText(expected) << ", got "
                           << shapeText(zeroType.getShape());
    }
  }
  inferredReturnTypes.push_back(
      RankedTensorType::get(input.getShape(), Float32Type::get(context)));
  return success();
}

//===----------------------------------------------------------------------===//
// RmsNormOp
//===----------------------------------------------------------------------===//

LogicalResult RmsNormOp::verify() {
  auto input = cast<RankedTensorType>(getInput().getType());
  auto weight = cast<RankedTensorType>(getWeight().getType());
  if (input.getRank() == 0)
    return emitOpError("expects an input with at least one dimension");
  if (weight.getRank() != 1)
    return emitOpError("expects a 1-D weight, got rank ") << weight.getRank();
  if (dimsConflict(weight.getDimSize(0), input.getShape().back()))
    return emitOpError("weight has ")
           << weight.getDimSize(0) << " elements but the innermost dimension has "
           << input.getShape().back();
  if (weight.getElementType() != input.getElementType())
    return emitOpError("weight element type ")
           << weight.getElementType() << " differs from input element type "
           << input.getElementType();
  if (!(getEpsilon().convertToDouble() >= 0.0))
    return emitOpError("epsilon must be non-negative, got ")
           << getEpsilon().convertToDouble();
  return success();
}

//===----------------------------------------------------------------------===//
// RopeOp
//===----------------------------------------------------------------------===//

LogicalResult CacheWriteOp::verify() {
  auto cache = cast<RankedTensorType>(getCache().getType());
  auto rows = cast<RankedTensorType>(getRows().getType());
  auto offset = cast<RankedTensorType>(getOffset().getType());
  if (cache.getRank() < 1 || rows.getRank() != cache.getRank())
    return emitOpError("expects rows of the cache's rank (") << cache.getRank() << "), got "
                                                              << rows;
  if (rows.getElementType() != cache.getElementType())
    return emitOpError("rows of ") << rows.getElementType() << " into a cache of "
                                   << cache.getElementType();
  if (shapesConflict(rows.getShape().drop_front(), cache.getShape().drop_front()))
    return emitOpError("rows ") << shapeText(rows.getShape()) << " do not match cache rows "
                                << shapeText(cache.getShape()) << " past the first dimension";
  if (!ShapedType::isDynamic(rows.getDimSize(0)) && !ShapedType::isDynamic(cache.getDimSize(0)) &&
      rows.getDimSize(0) > cache.getDimSize(0))
    return emitOpError("writes ") << rows.getDimSize(0) << " rows into a cache of "
                                  << cache.getDimSize(0);
  if (offset.getRank() != 1 || offset.getDimSize(0) != 1)
    return emitOpError("expects an offset of one element (tensor<1xi64>), got ") << offset;
  return success();
}

LogicalResult RopeOp::verify() {
  auto input = cast<RankedTensorType>(getInput().getType());
  auto positions = cast<RankedTensorType>(getPositions().getType());
  if (input.getRank() < 3)
    return emitOpError("expects input of rank >= 3 ([..., seq, heads, head_dim]), got rank ")
           << input.getRank();
  int64_t seq = input.getDimSize(input.getRank() - 3);
  int64_t headDim = input.getShape().back();
  if (!ShapedType::isDynamic(headDim) && headDim % 2 != 0)
    return emitOpError("head_dim ") << headDim << " must be even to rotate pairs";
  if (std::optional<int64_t> rotary = getRotaryDim()) {
    if (*rotary <= 0 || *rotary % 2 != 0)
      return emitOpError("rotary_dim must be positive and even, got ") << *rotary;
    if (!ShapedType::isDynamic(headDim) && *rotary > headDim)
      return emitOpError("rotary_dim ") << *rotary << " exceeds head_dim " << headDim;
  }
  if (positions.getRank() != 1)
    return emitOpError("expects 1-D positions, got rank ") << positions.getRank();
  if (dimsConflict(positions.getDimSize(0), seq))
    return emitOpError("has ") << positions.getDimSize(0) << " positions for " << seq
                               << " tokens";
  if (!(getTheta().convertToDouble() > 0.0))
    return emitOpError("theta must be positive, got ") << getTheta().convertToDouble();
  if (!(getFreqScale().convertToDouble() > 0.0))
    return emitOpError("freq_scale must be positive, got ")
           << getFreqScale().convertToDouble();
  return success();
}

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

LogicalResult AttentionOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location, ValueRange operands,
    DictionaryAttr attributes, OpaqueProperties properties, RegionRange regions,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  Adaptor adaptor(operands, attributes, properties, regions);
  OpErrorEmitter emitError{location, getOperationName()};
  auto q = cast<RankedTensorType>(adaptor.getQuery().getType());
  auto k = cast<RankedTensorType>(adaptor.getKey().getType());
  auto v = cast<RankedTensorType>(adaptor.getValue().getType());
  int64_t rank = q.getRank();
  if (rank < 3 || k.getRank() != rank || v.getRank() != rank)
    return emitError() << "expects query, key and value of one rank >= 3 "
                          "([..., seq, heads, head_dim]), got ranks "
                       << q.getRank() << ", " << k.getRank() << ", " << v.getRank();
  if (k.getElementType() != q.getElementType() || v.getElementType() != q.getElementType())
    return emitError() << "expects query, key and value of one element type, got "
                       << q.getElementType() << ", " << k.getElementType() << ", "
                       << v.getElementType();
  ArrayRef<int64_t> qs = q.getShape(), ks = k.getShape(), vs = v.getShape();
  if (shapesConflict(qs.drop_back(3), ks.drop_back(3)) ||
      shapesConflict(qs.drop_back(3), vs.drop_back(3)))
    return emitError() << "batch dimensions differ: query " << shapeText(qs) << ", key "
                       << shapeText(ks) << ", value " << shapeText(vs);
  int64_t seq = qs[rank - 3], qHeads = qs[rank - 2], headDim = qs[rank - 1];
  int64_t keys = ks[rank - 3], kvHeads = ks[rank - 2];
  if (dimsConflict(keys, vs[rank - 3]))
    return emitError() << "key has " << keys << " positions but value has "
                       << vs[rank - 3];
  if (dimsConflict(kvHeads, vs[rank - 2]))
    return emitError() << "key has " << kvHeads << " heads but value has " << vs[rank - 2];
  if (dimsConflict(headDim, ks[rank - 1]))
    return emitError() << "query head_dim " << headDim << " differs from key head_dim "
                       << ks[rank - 1];
  if (!ShapedType::isDynamic(qHeads) && !ShapedType::isDynamic(kvHeads) &&
      (kvHeads == 0 || qHeads % kvHeads != 0))
    return emitError() << "query heads (" << qHeads
                       << ") must be a multiple of key/value heads (" << kvHeads << ")";
  if (Value mask = adaptor.getMask()) {
    // One [S, T] mask for every batch entry, or one per entry: [..., S, T] with the
    // query's batch dimensions (padded sequences of different lengths).
    auto m = cast<RankedTensorType>(mask.getType());
    SmallVector<int64_t> shared{seq, keys};
    SmallVector<int64_t> perBatch(qs.drop_back(3));
    perBatch.append({seq, keys});
    bool fits = !shapesConflict(m.getShape(), shared) ||
                (rank > 3 && !shapesConflict(m.getShape(), perBatch));
    if (m.getElementType() != q.getElementType() || !fits) {
      InFlightDiagnostic diag = emitError() << "expects a mask of shape " << shapeText(shared);
      if (rank > 3)
        diag << " or " << shapeText(perBatch);
      return diag << " and type " << q.getElementType() << ", got " << m;
    }
  }
  if (std::optional<APFloat> scale = adaptor.getScale())
    if (!(scale->convertToDouble() > 0.0))
      return emitError() << "scale must be positive, got " << scale->convertToDouble();
  std::optional<int64_t> window = adaptor.getWindow();
  if (Value offset = adaptor.getQueryOffset()) {
    auto o = cast<RankedTensorType>(offset.getType());
    if (o.getRank() != 1 || o.getDimSize(0) != 1)
      return emitError() << "expects a query offset of one element (tensor<1xi64>), got " << o;
    if (adaptor.getCausal())
      return emitError() << "takes either causal or a query offset, not both";
  }
  if (window && (*window <= 0 || !adaptor.getQueryOffset()))
    return emitError() << "window " << *window
                       << " needs a query offset and must be positive";
  if (std::optional<int64_t> positions = adaptor.getRingPositions()) {
    if (!window || adaptor.getMask())
      return emitError() << "ring_positions needs a window and no mask";
    if (!ShapedType::isDynamic(keys) && !ShapedType::isDynamic(seq) &&
        (*window + seq - 1 > keys || *positions < keys))
      return emitError() << "ring_positions " << *positions << " over " << keys
                         << " rows: needs window + queries - 1 (" << *window + seq - 1
                         << ") <= rows <= ring_positions";
  }
  SmallVector<int64_t> shape(qs);
  shape.back() = vs.back();
  inferredReturnTypes.push_back(RankedTensorType::get(shape, q.getElementType()));
  return success();
}

//===----------------------------------------------------------------------===//
// CausalConv1dOp and SelectiveScanOp
//===----------------------------------------------------------------------===//

/// Checks a recurrent op's `length` operand: one integer element.
static LogicalResult verifyLength(const OpErrorEmitter &emitError, Value length) {
  if (!length)
    return success();
  auto type = cast<RankedTensorType>(length.getType());
  if (type.getRank() != 1 || type.getDimSize(0) != 1)
    return emitError() << "expects a length of one element (tensor<1xi64>), got " << type;
  return success();
}

LogicalResult CausalConv1dOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location, ValueRange operands,
    DictionaryAttr attributes, OpaqueProperties properties, RegionRange regions,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  Adaptor adaptor(operands, attributes, properties, regions);
  OpErrorEmitter emitError{location, getOperationName()};
  auto input = cast<RankedTensorType>(adaptor.getInput().getType());
  auto window = cast<RankedTensorType>(adaptor.getWindow().getType());
  auto weight = cast<RankedTensorType>(adaptor.getWeight().getType());
  if (input.getRank() != 2 || window.getRank() != 2 || weight.getRank() != 2)
    return emitError() << "expects input [L, C], window [K - 1, C] and weight [C, K], got ranks "
                       << input.getRank() << ", " << window.getRank() << ", "
                       << weight.getRank();
  if (window.getElementType() != input.getElementType() ||
      weight.getElementType() != input.getElementType())
    return emitError() << "expects input, window and weight of one element type, got "
                       << input.getElementType() << ", " << window.getElementType() << ", "
                       << weight.getElementType();
  int64_t channels = input.getDimSize(1), taps = weight.getDimSize(1);
  if (dimsConflict(window.getDimSize(1), channels) || dimsConflict(weight.getDimSize(0), channels))
    return emitError() << "channels differ: input " << shapeText(input.getShape()) << ", window "
                       << shapeText(window.getShape()) << ", weight "
                       << shapeText(weight.getShape());
  if (!ShapedType::isDynamic(taps) && taps < 2)
    return emitError() << "expects a filter of at least 2 taps, got " << taps;
  if (!ShapedType::isDynamic(taps) && dimsConflict(window.getDimSize(0), taps - 1))
    return emitError() << "a filter of " << taps << " taps needs a window of " << taps - 1
                       << " rows, got " << window.getDimSize(0);
  if (failed(verifyLength(emitError, adaptor.getLength())))
    return failure();
  inferredReturnTypes.push_back(input);
  inferredReturnTypes.push_back(RankedTensorType::get(
      {ShapedType::isDynamic(taps) ? window.getDimSize(0) : taps - 1, window.getDimSize(1)},
      input.getElementType()));
  return success();
}

LogicalResult SelectiveScanOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location, ValueRange operands,
    DictionaryAttr attributes, OpaqueProperties properties, RegionRange regions,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  Adaptor adaptor(operands, attributes, properties, regions);
  OpErrorEmitter emitError{location, getOperationName()};
  SmallVector<RankedTensorType> types;
  for (Value operand : {adaptor.getInput(), adaptor.getDelta(), adaptor.getA(), adaptor.getB(),
                        adaptor.getC(), adaptor.getState()})
    types.push_back(cast<RankedTensorType>(operand.getType()));
  RankedTensorType x = types[0], delta = types[1], a = types[2], b = types[3], c = types[4],
                   state = types[5];
  if (llvm::any_of(types, [](RankedTensorType t) { return t.getRank() != 2; }))
    return emitError() << "expects input and delta [L, D], a [D, N], b and c [L, N] and state "
                          "[D, N], all of rank 2";
  Type element = x.getElementType();
  if (llvm::any_of(types, [&](RankedTensorType t) { return t.getElementType() != element; }))
    return emitError() << "expects all operands of one element type, got " << x.getElementType()
                       << ", " << delta.getElementType() << ", " << a.getElementType() << ", "
                       << b.getElementType() << ", " << c.getElementType() << ", "
                       << state.getElementType();
  int64_t rows = x.getDimSize(0), channels = x.getDimSize(1), states = a.getDimSize(1);
  if (shapesConflict(delta.getShape(), x.getShape()))
    return emitError() << "delta " << shapeText(delta.getShape()) << " differs from input "
                       << shapeText(x.getShape());
  if (dimsConflict(a.getDimSize(0), channels) || shapesConflict(state.getShape(), a.getShape()))
    return emitError() << "expects a and state of shape [D, N] = [" << channels << ", N], got a "
                       << shapeText(a.getShape()) << " and state "
                       << shapeText(state.getShape());
  if (dimsConflict(b.getDimSize(0), rows) || dimsConflict(b.getDimSize(1), states) ||
      shapesConflict(c.getShape(), b.getShape()))
    return emitError() << "expects b and c of shape [L, N] = " << shapeText({rows, states})
                       << ", got b " << shapeText(b.getShape()) << " and c "
                       << shapeText(c.getShape());
  if (failed(verifyLength(emitError, adaptor.getLength())))
    return failure();
  inferredReturnTypes.push_back(x);
  inferredReturnTypes.push_back(state);
  return success();
}

LogicalResult WkvOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location, ValueRange operands,
    DictionaryAttr attributes, OpaqueProperties properties, RegionRange regions,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  Adaptor adaptor(operands, attributes, properties, regions);
  OpErrorEmitter emitError{location, getOperationName()};
  SmallVector<RankedTensorType> types;
  for (Value operand : {adaptor.getReceptance(), adaptor.getKey(), adaptor.getValue(),
                        adaptor.getDecay(), adaptor.getBonus(), adaptor.getState()})
    types.push_back(cast<RankedTensorType>(operand.getType()));
  RankedTensorType r = types[0], u = types[4], state = types[5];
  Type element = r.getElementType();
  if (llvm::any_of(types, [&](RankedTensorType t) { return t.getElementType() != element; }))
    return emitError() << "expects all operands of one element type, got " << r.getElementType()
                       << ", " << types[1].getElementType() << ", " << types[2].getElementType()
                       << ", " << types[3].getElementType() << ", " << u.getElementType() << ", "
                       << state.getElementType();
  if (r.getRank() != 3 || u.getRank() != 2 || state.getRank() != 3)
    return emitError() << "expects receptance, key, value and decay [L, H, S], bonus [H, S] and "
                          "state [H, S, S], got ranks "
                       << r.getRank() << ", " << u.getRank() << ", " << state.getRank();
  for (int i = 1; i < 4; ++i)
    if (shapesConflict(types[i].getShape(), r.getShape()))
      return emitError() << "expects key, value and decay of the receptance's shape "
                         << shapeText(r.getShape()) << ", got " << shapeText(types[i].getShape());
  int64_t heads = r.getDimSize(1), size = r.getDimSize(2);
  if (shapesConflict(u.getShape(), {heads, size}))
    return emitError() << "expects a bonus of shape " << shapeText({heads, size}) << ", got "
                       << shapeText(u.getShape());
  if (shapesConflict(state.getShape(), {heads, size, size}))
    return emitError() << "expects a state of shape " << shapeText({heads, size, size})
                       << ", got " << shapeText(state.getShape());
  if (failed(verifyLength(emitError, adaptor.getLength())))
    return failure();
  inferredReturnTypes.push_back(r);
  inferredReturnTypes.push_back(state);
  return success();
}

LogicalResult Wkv7Op::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location, ValueRange operands,
    DictionaryAttr attributes, OpaqueProperties properties, RegionRange regions,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  Adaptor adaptor(operands, attributes, properties, regions);
  OpErrorEmitter emitError{location, getOperationName()};
  auto r = cast<RankedTensorType>(adaptor.getReceptance().getType());
  auto state = cast<RankedTensorType>(adaptor.getState().getType());
  if (r.getRank() != 3 || state.getRank() != 3)
    return emitError() << "expects receptance, decay, key, value, a and b [L, H, S] and state "
                          "[H, S, S], got ranks "
                       << r.getRank() << " and " << state.getRank();
  for (Value operand : {adaptor.getDecay(), adaptor.getKey(), adaptor.getValue(), adaptor.getA(),
                        adaptor.getB()}) {
    auto type = cast<RankedTensorType>(operand.getType());
    if (type.getElementType() != r.getElementType() || shapesConflict(type.getShape(), r.getShape()))
      return emitError() << "expects decay, key, value, a and b of the receptance's type " << r
                         << ", got " << type;
  }
  int64_t heads = r.getDimSize(1), size = r.getDimSize(2);
  if (state.getElementType() != r.getElementType() ||
      shapesConflict(state.getShape(), {heads, size, size}))
    return emitError() << "expects a state of shape " << shapeText({heads, size, size})
                       << " and type " << r.getElementType() << ", got " << state;
  if (failed(verifyLength(emitError, adaptor.getLength())))
    return failure();
  inferredReturnTypes.push_back(r);
  inferredReturnTypes.push_back(state);
  return success();
}

//===----------------------------------------------------------------------===//
// GatherOp
//===----------------------------------------------------------------------===//

LogicalResult GatherOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location, ValueRange operands,
    DictionaryAttr attributes, OpaqueProperties properties, RegionRange regions,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  Adaptor adaptor(operands, attributes, properties, regions);
  OpErrorEmitter emitError{location, getOperationName()};
  auto table = cast<RankedTensorType>(adaptor.getTable().getType());
  auto indices = cast<RankedTensorType>(adaptor.getIndices().getType());
  // While parsing, default-valued attributes are not populated yet.
  IntegerAttr axisAttr = adaptor.getAxisAttr();
  int64_t axis = axisAttr ? axisAttr.getInt() : 0;
  if (axis < 0 || axis >= table.getRank())
    return emitError() << "axis " << axis << " is out of range for a rank-"
                       << table.getRank() << " table";
  Type element = table.getElementType();
  if (auto quant = dyn_cast<QuantType>(element)) {
    if (axis != 0)
      return emitError() << "a quantized table is packed along its innermost dimension; "
                            "it can only be gathered along axis 0, got axis "
                         << axis;
    if (failed(verifyPackedShape(table, quant, emitError)))
      return failure();
    element = Float32Type::get(context);
  }
  SmallVector<int64_t> shape(table.getShape().take_front(axis));
  llvm::append_range(shape, indices.getShape());
  llvm::append_range(shape, table.getShape().drop_front(axis + 1));
  inferredReturnTypes.push_back(RankedTensorType::get(shape, element));
  return success();
}

// Gathering from a splat table gives a splat of the result's shape.
OpFoldResult GatherOp::fold(FoldAdaptor adaptor) {
  auto splat = dyn_cast_if_present<SplatElementsAttr>(adaptor.getTable());
  auto resultType = cast<RankedTensorType>(getType());
  if (!splat || !resultType.hasStaticShape() ||
      splat.getElementType() != resultType.getElementType())
    return {};
  return SplatElementsAttr::get(resultType, splat.getSplatValue<Attribute>());
}

//===----------------------------------------------------------------------===//
// DispatchOp
//===----------------------------------------------------------------------===//

YieldOp DispatchOp::getYield() { return cast<YieldOp>(getBody().front().getTerminator()); }

LogicalResult DispatchOp::verifyRegions() {
  Block &body = getBody().front();
  if (body.getNumArguments() != getInputs().size())
    return emitOpError("body has ")
           << body.getNumArguments() << " arguments but the dispatch has "
           << getInputs().size() << " inputs";
  for (auto [i, arg, input] : llvm::enumerate(body.getArguments(), getInputs()))
    if (arg.getType() != input.getType())
      return emitOpError("body argument #")
             << i << " has type " << arg.getType() << " but input #" << i << " has type "
             << input.getType();
  auto yield = dyn_cast<YieldOp>(body.back());
  if (!yield)
    return emitOpError("body must end in kiln.yield");
  if (yield.getValues().size() != getNumResults())
    return emitOpError("body yields ")
           << yield.getValues().size() << " values but the dispatch has "
           << getNumResults() << " results";
  for (auto [i, value, result] : llvm::enumerate(yield.getValues(), getResults()))
    if (value.getType() != result.getType())
      return emitOpError("yielded value #")
             << i << " has type " << value.getType() << " but result #" << i
             << " has type " << result.getType();
  return success();
}

namespace {

/// Creates a dispatch with `inputs` and `resultTypes` that takes over `op`'s body.
DispatchOp rebuildDispatch(PatternRewriter &rewriter, DispatchOp op, ValueRange inputs,
                           TypeRange resultTypes) {
  rewriter.setInsertionPoint(op);
  auto rebuilt = DispatchOp::create(rewriter, op.getLoc(), resultTypes, inputs);
  rebuilt->setDiscardableAttrs(op->getDiscardableAttrDictionary());
  rewriter.inlineRegionBefore(op.getBody(), rebuilt.getBody(), rebuilt.getBody().end());
  return rebuilt;
}

/// Drops results nobody uses, and results that merely return one of the inputs (their
/// users read the input directly instead).
struct DropDeadOrForwardedResults : OpRewritePattern<DispatchOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(DispatchOp op, PatternRewriter &rewriter) const override {
    Block &body = op.getBody().front();
    YieldOp yield = op.getYield();
    SmallVector<Value> keptValues;
    SmallVector<Type> keptTypes;
    SmallVector<Value> replacements(op.getNumResults());
    SmallVector<int> forwardedInput(op.getNumResults(), -1);
    for (auto [i, value] : llvm::enumerate(yield.getValues())) {
      auto arg = dyn_cast<BlockArgument>(value);
      if (arg && arg.getOwner() == &body)
        forwardedInput[i] = arg.getArgNumber();
      else if (!op.getResult(i).use_empty()) {
        keptValues.push_back(value);
        keptTypes.push_back(value.getType());
      }
    }
    if (keptValues.size() == op.getNumResults())
      return rewriter.notifyMatchFailure(op, "every result is live and computed");

    SmallVector<Value> inputs(op.getInputs());
    DispatchOp rebuilt = rebuildDispatch(rewriter, op, inputs, keptTypes);
    rewriter.modifyOpInPlace(yield, [&] { yield.getValuesMutable().assign(keptValues); });
    unsigned next = 0;
    for (auto [i, result] : llvm::enumerate(op.getResults())) {
      if (forwardedInput[i] >= 0)
        rewriter.replaceAllUsesWith(result, inputs[forwardedInput[i]]);
      else if (!result.use_empty())
        rewriter.replaceAllUsesWith(result, rebuilt.getResult(next++));
    }
    rewriter.eraseOp(op);
    return success();
  }
};

/// Drops inputs the body never reads and merges inputs passed more than once.
struct DropDeadOrDuplicateInputs : OpRewritePattern<DispatchOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(DispatchOp op, PatternRewriter &rewriter) const override {
    Block &body = op.getBody().front();
    llvm::SmallDenseMap<Value, unsigned> firstIndex;
    SmallVector<unsigned> leader(op.getInputs().size());
    for (auto [i, input] : llvm::enumerate(op.getInputs()))
      leader[i] = firstIndex.try_emplace(input, i).first->second;

    llvm::BitVector erase(op.getInputs().size());
    SmallVector<Value> keptInputs;
    for (auto [i, input] : llvm::enumerate(op.getInputs())) {
      bool used = false;
      for (auto [j, other] : llvm::enumerate(body.getArguments()))
        used |= leader[j] == i && !other.use_empty();
      if (leader[i] != i || !used)
        erase.set(i);
      else
        keptInputs.push_back(input);
    }
    if (erase.none())
      return rewriter.notifyMatchFailure(op, "every input is distinct and read");

    for (auto [i, arg] : llvm::enumerate(body.getArguments()))
      if (leader[i] != i)
        rewriter.replaceAllUsesWith(arg, body.getArgument(leader[i]));
    DispatchOp rebuilt = rebuildDispatch(rewriter, op, keptInputs, op.getResultTypes());
    rewriter.modifyOpInPlace(rebuilt, [&] { rebuilt.getBody().front().eraseArguments(erase); });
    rewriter.replaceOp(op, rebuilt.getResults());
    return success();
  }
};

} // namespace

void DispatchOp::getCanonicalizationPatterns(RewritePatternSet &patterns,
                                             MLIRContext *context) {
  patterns.add<DropDeadOrForwardedResults, DropDeadOrDuplicateInputs>(context);
}
