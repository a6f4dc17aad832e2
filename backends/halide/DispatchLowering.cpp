// kiln.dispatch → Halide Funcs. Every tensor value becomes a Func over its index space;
// linalg.generic bodies become expressions, reductions become update definitions over
// an RDom, and tensor ops (reshapes, slices, concat, pad) become index arithmetic.
#include "backends/halide/DispatchLowering.h"

#include "backends/halide/HalideTypes.h"
#include "backends/halide/KernelSchedule.h"
#include "backends/halide/ScalarLowering.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/AffineExpr.h"
#include "mlir/IR/AffineMap.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallBitVector.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <utility>

using namespace mlir;
using Halide::Expr;
using Halide::Func;
using Halide::Var;

namespace kiln::halide {

std::vector<Halide::Argument> LoweredKernel::arguments() const {
  return std::vector<Halide::Argument>(inputs.begin(), inputs.end());
}

const Stage *LoweredKernel::stage(const std::string &name) const {
  auto it = llvm::find_if(stages, [&](const Stage &s) { return s.func.name() == name; });
  return it == stages.end() ? nullptr : &*it;
}

Stage *LoweredKernel::stage(const std::string &name) {
  return const_cast<Stage *>(std::as_const(*this).stage(name));
}

namespace {

/// The largest position a ring cache_write computes with (i32 arithmetic: far past any
/// context, never overflowing when the rows of one pass are added).
constexpr int kMaxPosition = 1 << 30;

bool isElementwiseWidening(linalg::GenericOp op); // defined with the product matchers

/// The Halide argument index of the innermost output dimension (a projection of `op`'s
/// loops by `out`) that no loop in `read` indexes (see Stage::tileRowArg); 1 (the next
/// dimension out) when there is none.
int tileRowArgOf(AffineMap out, const llvm::SmallBitVector &read) {
  int rank = static_cast<int>(out.getNumResults());
  for (int j = rank - 2; j >= 0; --j)
    if (!read.test(out.getDimPosition(j)))
      return rank - 1 - j;
  return 1;
}

/// The contraction that `value` is a pointwise epilogue of (kiln-fuse-epilogues): the
/// reduction generic reached from `value` through generics that read it at the point
/// they write, provided nothing but those steps reads the contraction or any step on
/// the way, and `yield` reads only `value`, once. A schedule may then compute the
/// contraction tile by tile inside the output, the epilogue applied to each tile.
linalg::GenericOp epilogueSource(Value value, Operation *yield) {
  llvm::SmallPtrSet<Operation *, 8> steps;
  linalg::GenericOp source;
  SmallVector<Value> work{value};
  while (!work.empty()) {
    auto generic = work.pop_back_val().getDefiningOp<linalg::GenericOp>();
    if (!generic || !steps.insert(generic).second)
      continue;
    if (generic.getNumResults() != 1 || generic.getNumDpsInits() != 1)
      return {};
    if (generic.getNumReductionLoops() != 0) {
      if (source)
        return {};
      source = generic;
      continue;
    }
    if (!generic.getMatchingIndexingMap(generic.getDpsInitOperand(0)).isIdentity())
      return {};
    for (OpOperand *input : generic.getDpsInputOperands())
      if (generic.getMatchingIndexingMap(input).isIdentity() &&
          input->get().getType() == generic.getResult(0).getType())
        work.push_back(input->get());
  }
  if (!source || source.getResult(0) == value)
    return {};
  for (Operation *step : steps)
    for (Operation *user : step->getResult(0).getUsers())
      if (!steps.contains(user) && (user != yield || step->getResult(0) != value))
        return {};
  if (llvm::count(yield->getOperands(), value) != 1)
    return {};
  return source;
}

std::vector<Var> makeVars(size_t rank, const char *prefix) {
  std::vector<Var> vars;
  for (size_t i = 0; i < rank; ++i)
    vars.emplace_back(std::string(prefix) + std::to_string(i));
  return vars;
}

/// Halide orders dimensions innermost first; MLIR outermost first.
template <typename T>
std::vector<T> reversed(ArrayRef<T> values) {
  return std::vector<T>(values.rbegin(), values.rend());
}

std::vector<Expr> asExprs(ArrayRef<Var> vars) {
  return std::vector<Expr>(vars.begin(), vars.end());
}

Expr clampIndex(const Expr &index, int64_t extent) {
  return Halide::clamp(index, 0, static_cast<int>(extent - 1));
}

/// A quantized tensor as bytes: `bytes(byte, row...)` in Halide order.
struct PackedTensor {
  Func bytes;
  QuantType quant;
  /// LoweringOptions::hardwareHalfToFloat.
  bool hardwareHalf = false;
};

/// Byte `byte` of the row `rows` (outer indices, MLIR order), as uint8.
Expr rawByteAt(const PackedTensor &p, const std::vector<Expr> &rows, Expr byte) {
  std::vector<Expr> at{std::move(byte)};
  at.insert(at.end(), rows.rbegin(), rows.rend());
  return p.bytes(at);
}

Expr byteAt(const PackedTensor &p, const std::vector<Expr> &rows, Expr byte) {
  return Halide::cast(Halide::Int(32), rawByteAt(p, rows, std::move(byte)));
}

/// Q4_K's 6-bit scale and min of sub-block `sub` (0..7) of the 256-value block at
/// `base`, from its 12 packed bytes at base + 4.
std::pair<Expr, Expr> q4kScaleAndMin(const PackedTensor &p, const std::vector<Expr> &rows,
                                     const Expr &base, const Expr &sub) {
  auto scaleByte = [&](const Expr &k) { return byteAt(p, rows, base + 4 + k); };
  Expr sc = Halide::select(sub < 4, scaleByte(sub) & 63,
                           (scaleByte(sub + 4) & 15) | ((scaleByte(sub - 4) >> 6) << 4));
  Expr mn = Halide::select(sub < 4, scaleByte(sub + 4) & 63,
                           (scaleByte(sub + 4) >> 4) | ((scaleByte(sub) >> 6) << 4));
  return {sc, mn};
}

Expr halfAt(const PackedTensor &p, const std::vector<Expr> &rows, const Expr &byte) {
  Expr bits = Halide::cast(Halide::UInt(16), byteAt(p, rows, byte)) |
              (Halide::cast(Halide::UInt(16), byteAt(p, rows, byte + 1)) << 8);
  if (p.hardwareHalf)
    // LLVM merges the two byte loads into one 16-bit load feeding vcvtph2ps (vcvtsh2ss
    // with AVX512-FP16).
    return Halide::Internal::Call::make(Halide::Float(32), "llvm.convert.from.fp16.f32", {bits},
                                        Halide::Internal::Call::PureExtern);
  return Halide::cast(Halide::Float(32), Halide::reinterpret(Halide::Float(16), bits));
}

/// The value of column `col` in the row `rows` (outer indices, MLIR order) of a packed
/// tensor, decoded as ggml lays the blocks out (ggml-quants.c dequantize_row_*), or for
/// the group-wise formats from `scale` and `zeroPoint` (null: implicit).
Expr dequantizeAt(const PackedTensor &p, const std::vector<Expr> &rows, const Expr &col,
                  const Expr &scale, const Expr &zeroPoint) {
  switch (p.quant.getScheme()) {
  case QuantScheme::q8_0: {
    Expr base = (col / 32) * 34;
    Expr q = Halide::cast(Halide::Int(8), Halide::cast(Halide::UInt(8), byteAt(p, rows, base + 2 + col % 32)));
    return halfAt(p, rows, base) * Halide::cast(Halide::Float(32), q);
  }
  case QuantScheme::q4_0:
  case QuantScheme::q4_1: {
    // 32 values: f16 d (q4_1: and an f16 min m), then 16 bytes of nibbles, value j in
    // the low nibble of byte j and value j + 16 in its high nibble. q4_0 centres the
    // nibble on 8; q4_1 adds m instead.
    bool withMin = p.quant.getScheme() == QuantScheme::q4_1;
    Expr base = (col / 32) * (withMin ? 20 : 18), j = col % 32;
    Expr byte = byteAt(p, rows, base + (withMin ? 4 : 2) + j % 16);
    Expr nibble = Halide::select(j < 16, byte & 15, byte >> 4);
    Expr d = halfAt(p, rows, base);
    return withMin ? d * Halide::cast(Halide::Float(32), nibble) + halfAt(p, rows, base + 2)
                   : d * Halide::cast(Halide::Float(32), nibble - 8);
  }
  case QuantScheme::q4_0x16: {
    // kiln/quant_formats.h: row n is row n % 16 of group n / 16; the row's scale at
    // b * 288 + 2 * (n % 16); value t of block b in byte b * 288 + 32 + (t / 4) * 32 +
    // 2 * (n % 16) + t % 2, in its high nibble when t % 4 >= 2.
    std::vector<Expr> group(rows);
    Expr row = group.back();
    group.back() = row / 16;
    Expr base = (col / 32) * 288, t = col % 32, r = row % 16;
    Expr byte = byteAt(p, group, base + 32 + (t / 4) * 32 + 2 * r + t % 2);
    Expr nibble = Halide::select(t % 4 < 2, byte & 15, byte >> 4);
    return halfAt(p, group, base + 2 * r) * Halide::cast(Halide::Float(32), nibble - 8);
  }
  case QuantScheme::q8_0x16: {
    // kiln/quant_formats.h: row n is row n % 16 of group n / 16; value t of block b is
    // the int8 at b * 544 + (t / 2) * 32 + 2 * (n % 16) + t % 2; the row's scale at
    // b * 544 + 512 + 2 * (n % 16).
    std::vector<Expr> group(rows);
    Expr row = group.back();
    group.back() = row / 16;
    Expr base = (col / 32) * 544, t = col % 32, r = row % 16;
    Expr q = Halide::cast(Halide::Int(8), rawByteAt(p, group, base + (t / 2) * 32 + 2 * r + t % 2));
    return halfAt(p, group, base + 512 + 2 * r) * Halide::cast(Halide::Float(32), q);
  }
  case QuantScheme::q5_0x16: {
    // kiln/quant_formats.h: per group and block of 352 bytes, the 16 scales, two slices
    // of fifth bits (value t of row r: bit v % 8 of byte 32 + 32 (v / 8) + 2r + t % 2,
    // v = 2 (t / 4) + (t % 4) / 2), then q4_0x16's 8 slices of nibbles from byte 96.
    std::vector<Expr> group(rows);
    Expr row = group.back();
    group.back() = row / 16;
    Expr base = (col / 32) * 352, t = col % 32, r = row % 16, v = 2 * (t / 4) + (t % 4) / 2;
    Expr byte = byteAt(p, group, base + 96 + (t / 4) * 32 + 2 * r + t % 2);
    Expr nibble = Halide::select(t % 4 < 2, byte & 15, byte >> 4);
    Expr fifth = (byteAt(p, group, base + 32 + 32 * (v / 8) + 2 * r + t % 2) >> (v % 8)) & 1;
    return halfAt(p, group, base + 2 * r) *
           Halide::cast(Halide::Float(32), (nibble | (fifth << 4)) - 16);
  }
  case QuantScheme::q4_kx16: {
    // kiln/quant_formats.h: per group and block of 256 (2368 bytes), row r's d at 2r
    // and dmin at 32 + 2r; sub-block s from 64 + 288 s: scale byte r, min byte 16 + r,
    // value t in q4_0x16's slices from byte 32.
    std::vector<Expr> group(rows);
    Expr row = group.back();
    group.back() = row / 16;
    Expr base = (col / 256) * 2368, s = (col % 256) / 32, t = col % 32, r = row % 16;
    Expr sub = base + 64 + 288 * s;
    Expr byte = byteAt(p, group, sub + 32 + (t / 4) * 32 + 2 * r + t % 2);
    Expr nibble = Halide::select(t % 4 < 2, byte & 15, byte >> 4);
    return halfAt(p, group, base + 2 * r) * Halide::cast(Halide::Float(32), byteAt(p, group, sub + r)) *
               Halide::cast(Halide::Float(32), nibble) -
           halfAt(p, group, base + 32 + 2 * r) * Halide::cast(Halide::Float(32), byteAt(p, group, sub + 16 + r));
  }
  case QuantScheme::q6_kx16: {
    // kiln/quant_formats.h: per group and block of 256 (3360 bytes), row r's d at 2r;
    // sub-block s from 32 + 416 s: the scale of value t at byte 16 (t / 16) + r, its
    // high bits at bit 2 (v % 4) of byte 32 + 32 (v / 4) + 2r + t % 2 (v = 2 (t / 4) +
    // (t % 4) / 2), its low bits in q4_0x16's slices from byte 160.
    std::vector<Expr> group(rows);
    Expr row = group.back();
    group.back() = row / 16;
    Expr base = (col / 256) * 3360, t = col % 32, r = row % 16, v = 2 * (t / 4) + (t % 4) / 2;
    Expr sub = base + 32 + 416 * ((col % 256) / 32);
    Expr byte = byteAt(p, group, sub + 160 + (t / 4) * 32 + 2 * r + t % 2);
    Expr low = Halide::select(t % 4 < 2, byte & 15, byte >> 4);
    Expr high = (byteAt(p, group, sub + 32 + 32 * (v / 4) + 2 * r + t % 2) >> (2 * (v % 4))) & 3;
    Expr sc = Halide::cast(Halide::Int(8), Halide::cast(Halide::UInt(8), byteAt(p, group, sub + 16 * (t / 16) + r)));
    return halfAt(p, group, base + 2 * r) * Halide::cast(Halide::Float(32), sc) *
           Halide::cast(Halide::Float(32), (low | (high << 4)) - 32);
  }
  case QuantScheme::q5_0:
  case QuantScheme::q5_1: {
    // 32 values: f16 d (q5_1: and an f16 min m), a little-endian 32-bit word whose bit
    // j is value j's fifth bit, then 16 bytes of nibbles as in q4_0. q5_0 centres the
    // 5-bit value on 16; q5_1 adds m instead.
    bool withMin = p.quant.getScheme() == QuantScheme::q5_1;
    Expr base = (col / 32) * (withMin ? 24 : 22), j = col % 32;
    Expr fifthBits = base + (withMin ? 4 : 2);
    Expr byte = byteAt(p, rows, fifthBits + 4 + j % 16);
    Expr nibble = Halide::select(j < 16, byte & 15, byte >> 4);
    Expr fifth = (byteAt(p, rows, fifthBits + j / 8) >> (j % 8)) & 1;
    Expr q = Halide::cast(Halide::Float(32), nibble | (fifth << 4));
    Expr d = halfAt(p, rows, base);
    return withMin ? d * q + halfAt(p, rows, base + 2) : d * (q - 16.0f);
  }
  case QuantScheme::q4_k: {
    // 256 values: d, dmin, 12 bytes of 6-bit scales and mins for 8 sub-blocks of 32,
    // then 128 bytes holding two sub-blocks each (low nibbles, then high nibbles).
    Expr base = (col / 256) * 144, e = col % 256;
    Expr chunk = e / 64, high = (e % 64) / 32, l = e % 32;
    Expr sub = chunk * 2 + high;
    auto [sc, mn] = q4kScaleAndMin(p, rows, base, sub);
    Expr byte = byteAt(p, rows, base + 16 + chunk * 32 + l);
    Expr nibble = Halide::select(high == 0, byte & 15, byte >> 4);
    Expr d = halfAt(p, rows, base), dmin = halfAt(p, rows, base + 2);
    return d * Halide::cast(Halide::Float(32), sc) * Halide::cast(Halide::Float(32), nibble) -
           dmin * Halide::cast(Halide::Float(32), mn);
  }
  case QuantScheme::q6_k: {
    // 256 values: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 int8 scales, d.
    Expr base = (col / 256) * 210, e = col % 256;
    Expr half = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
    Expr lowByte = byteAt(p, rows, base + half * 64 + l + (quarter % 2) * 32);
    Expr low = Halide::select(quarter >= 2, lowByte >> 4, lowByte & 15);
    Expr highBits = (byteAt(p, rows, base + 128 + half * 32 + l) >> (quarter * 2)) & 3;
    Expr q = (low | (highBits << 4)) - 32;
    Expr scaleByte = byteAt(p, rows, base + 192 + half * 8 + l / 16 + quarter * 2);
    Expr sc = Halide::cast(Halide::Int(8), Halide::cast(Halide::UInt(8), scaleByte));
    return halfAt(p, rows, base + 208) * Halide::cast(Halide::Float(32), sc) *
           Halide::cast(Halide::Float(32), q);
  }
  case QuantScheme::int8: {
    Expr q = Halide::cast(Halide::Float(32),
                          Halide::cast(Halide::Int(8), Halide::cast(Halide::UInt(8), byteAt(p, rows, col))));
    return (zeroPoint.defined() ? q - zeroPoint : q) * scale;
  }
  case QuantScheme::int4: {
    Expr byte = byteAt(p, rows, col / 2);
    Expr q = Halide::cast(Halide::Float(32), Halide::select(col % 2 == 0, byte & 15, byte >> 4));
    return (q - (zeroPoint.defined() ? zeroPoint : Expr(8.0f))) * scale;
  }
  }
  llvm_unreachable("unknown quantization scheme");
}

/// Whether the integer matrix-vector product reads `scheme`'s blocks.
bool hasIntegerBlocks(QuantScheme scheme) {
  switch (scheme) {
  case QuantScheme::q8_0:
  case QuantScheme::q4_0:
  case QuantScheme::q5_0:
  case QuantScheme::q4_k:
  case QuantScheme::q6_k:
    return true;
  default:
    return false;
  }
}

/// Values 32b .. 32b + 31 of a packed row as the integer dot product reads them: value j
/// is scale * (u - offset) - minimum, u an unsigned byte; `lane` (j / 4) picks the
/// scale where it changes inside the 32 (Q6_K's sub-blocks of 16: lanes 0-3, 4-7).
struct IntegerBlock {
  Expr u;       // uint8
  Expr scale;   // f32
  Expr minimum; // f32, or undefined (none)
  int offset = 0;
  bool halves = false; // the scale of lanes 4-7 differs from that of lanes 0-3
};

IntegerBlock integerBlock(const PackedTensor &p, const std::vector<Expr> &rows, const Expr &b,
                          const Expr &j, const Expr &lane) {
  auto byte = [&](const Expr &at) { return rawByteAt(p, rows, at); };
  Halide::Type u8 = Halide::UInt(8);
  auto low = [&](const Expr &v) { return v & Halide::cast(u8, 15); };
  auto high = [&](const Expr &v) { return v >> Halide::cast(u8, 4); };
  IntegerBlock block;
  switch (p.quant.getScheme()) {
  case QuantScheme::q8_0: {
    // int8 q + 128: the byte with its sign bit flipped.
    Expr base = b * 34;
    block.u = byte(base + 2 + j) ^ Halide::cast(u8, 0x80);
    block.scale = halfAt(p, rows, base);
    block.offset = 128;
    return block;
  }
  case QuantScheme::q4_0: {
    Expr base = b * 18, v = byte(base + 2 + j % 16);
    block.u = Halide::select(j < 16, low(v), high(v));
    block.scale = halfAt(p, rows, base);
    block.offset = 8;
    return block;
  }
  case QuantScheme::q5_0: {
    Expr base = b * 22, v = byte(base + 6 + j % 16);
    // Bit j of the little-endian word at base + 2, tested byte-wise: a vector of 32
    // values is a shuffle of 4 bytes, an and and a compare.
    Expr bit = Halide::cast(u8, 1) << Halide::cast(u8, j % 8);
    Expr fifth = Halide::select((byte(base + 2 + j / 8) & bit) != Halide::cast(u8, 0),
                                Halide::cast(u8, 16), Halide::cast(u8, 0));
    block.u = Halide::select(j < 16, low(v), high(v)) | fifth;
    block.scale = halfAt(p, rows, base);
    block.offset = 16;
    return block;
  }
  case QuantScheme::q4_k: {
    // Sub-block b % 8 of the 256 at (b / 8) * 144: its 32 nibbles are the low or high
    // halves of 32 consecutive bytes; its 6-bit scale and min.
    Expr base = (b / 8) * 144, sub = b % 8, chunk = sub / 2;
    Expr v = byte(base + 16 + chunk * 32 + j);
    block.u = Halide::select(sub % 2 == 0, low(v), high(v));
    auto [sc, mn] = q4kScaleAndMin(p, rows, base, sub);
    block.scale = halfAt(p, rows, base) * Halide::cast(Halide::Float(32), sc);
    block.minimum = halfAt(p, rows, base + 2) * Halide::cast(Halide::Float(32), mn);
    return block;
  }
  case QuantScheme::q6_k: {
    // Quarter q of half h of the 256 at (b / 8) * 210: 4 low bits from 32 consecutive
    // bytes of ql, 2 high bits from 32 of qh, two int8 scales (one per 16 values).
    Expr base = (b / 8) * 210, s = b % 8, half = s / 4, quarter = s % 4;
    Expr lowByte = byte(base + half * 64 + (quarter % 2) * 32 + j);
    Expr highBits = (byte(base + 128 + half * 32 + j) >> Halide::cast(u8, quarter * 2)) &
                    Halide::cast(u8, 3);
    block.u = Halide::select(quarter >= 2, high(lowByte), low(lowByte)) |
              (highBits << Halide::cast(u8, 4));
    Expr sc = Halide::cast(Halide::Int(8), byte(base + 192 + half * 8 + quarter * 2 + lane / 4));
    block.scale = halfAt(p, rows, base + 208) * Halide::cast(Halide::Float(32), sc);
    block.offset = 32;
    block.halves = true;
    return block;
  }
  default:
    llvm_unreachable("not an integer block format");
  }
}

/// What a product [M, K] x [N, K]^T + init over f32 with packed weights (as
/// LinalgBuilder::matmulTransposed writes it) reads; null `weights` when `op` is not one.
struct PackedProduct {
  const PackedTensor *weights = nullptr;
  Value activations;
  int64_t rows = 0, columns = 0, depth = 0;
};

/// An activation row x(k, m) in blocks of 32, as the block products read it: with an
/// integer `type`, as ggml's quantize_row_q8_0 makes it (per block its largest
/// magnitude a, the scale a / 127 and the values round(x * 127 / a)), else x itself;
/// and per block the sum of the values (int32, or f32).
struct ActivationBlocks {
  Func largest, values, sum;
};

ActivationBlocks activationBlocks(const Func &x, Halide::Type type, const std::string &prefix) {
  Var k("k"), b("b"), m("m");
  Halide::RDom inBlock(0, 32, prefix + "_j");
  ActivationBlocks row{Func(prefix + "_amax"), Func(prefix + "_xq"), Func(prefix + "_sx")};
  row.largest(b, m) = 0.0f;
  row.largest(b, m) = Halide::max(row.largest(b, m), Halide::abs(x(b * 32 + inBlock, m)));
  if (type.is_float()) {
    row.values(k, m) = x(k, m);
  } else {
    Expr largest = row.largest(k / 32, m);
    Expr inverse = Halide::select(largest > 0.0f, 127.0f / largest, 0.0f);
    row.values(k, m) = Halide::cast(type, Halide::round(x(k, m) * inverse));
  }
  Halide::Type sumType = type.is_float() ? Halide::Float(32) : Halide::Int(32);
  row.sum(b, m) = Halide::cast(sumType, 0);
  row.sum(b, m) += Halide::cast(sumType, row.values(b * 32 + inBlock, m));
  return row;
}

class KernelBuilder {
public:
  KernelBuilder(DispatchOp dispatch, StringRef name, const LoweringOptions &options)
      : dispatch(dispatch), options(options) {
    kernel.name = name.str();
  }

  FailureOr<LoweredKernel> build();

private:
  LogicalResult lowerOp(Operation *op);
  LogicalResult lowerGeneric(linalg::GenericOp op);
  LogicalResult lowerConstant(arith::ConstantOp op);
  LogicalResult lowerReshape(Operation *op, Value source, Value result,
                             ArrayRef<ReassociationIndices> groups, bool expand);
  LogicalResult lowerExtractSlice(tensor::ExtractSliceOp op);
  LogicalResult lowerConcat(tensor::ConcatOp op);
  LogicalResult lowerPad(tensor::PadOp op);
  LogicalResult lowerGather(GatherOp op);
  LogicalResult lowerDequantize(DequantizeOp op);
  LogicalResult lowerRmsNorm(RmsNormOp op);
  LogicalResult lowerRope(RopeOp op);
  LogicalResult lowerAttention(AttentionOp op);
  LogicalResult lowerCacheWrite(CacheWriteOp op);

  LogicalResult lowerCausalConv1d(CausalConv1dOp op);
  LogicalResult lowerSelectiveScan(SelectiveScanOp op);
  LogicalResult lowerWkv(WkvOp op);
  LogicalResult lowerWkv7(Wkv7Op op);
  /// The one element of a recurrent op's `length` operand clamped to [0, rows], or
  /// `rows` without one.
  FailureOr<Expr> stepsOf(Operation *op, Value length, int64_t rows);
  /// Registers `f` as a stage computed at root before any output is written, scheduled
  /// by `place` (a recurrent op's state is an output that may share its bytes with the
  /// old state: everything read from the old state must be read before).
  void rootStage(const Func &f, std::vector<int64_t> shape,
                 std::function<void(const KernelSchedule &)> place);
  /// A recurrence's output `y` (shape [rows, ..., width], a reduction over the state)
  /// as a root stage: vectors along `inner` (the innermost dimension), threads over
  /// the rows `t`.
  void rowOutputStage(Func y, Var inner, Var t, std::vector<int64_t> shape);
  /// `op` as a kernel of its own when it is a one-row product with packed block
  /// weights (a decode step's projections), taken block by block: each block's
  /// dot product of the signed weights u - offset with the activations, scaled once by
  /// the block's scale (and its minimum times the activations' block sum taken off).
  /// The activations are f32, or with `integer` (LoweringOptions::int8Activations)
  /// 8-bit blocks with integer dot products. True when it defined the result.
  FailureOr<bool> lowerBlockMatvec(linalg::GenericOp op, bool integer);
  /// `op` as a kernel of its own when it is a product [M, K] x [N, K]^T + init with
  /// q4_0x16 weights: 16 output columns per vector (see the definition).
  FailureOr<bool> lowerInterleavedProduct(linalg::GenericOp op, bool integer);
  FailureOr<bool> lowerFloatMatvec(linalg::GenericOp op);
  bool isFiniteHalfWeight(BlockArgument arg);
  FailureOr<bool> lowerFloatPanelProduct(linalg::GenericOp op);
  /// `op` as a product of f32 activations with packed weights, or nothing.
  PackedProduct matchPackedProduct(linalg::GenericOp op);
  /// Whether `op`'s result is this dispatch's result that the program returns as the
  /// kiln.state its cache operand holds: the artifact then binds one buffer to both,
  /// and rows the op does not write keep their old values without being copied.
  bool writtenInPlace(CacheWriteOp op);

  /// Elements per block of the packed weights `op` (a reduction) decodes along a
  /// reduction loop; 0 when it reads none, or several of different block sizes.
  int64_t decodedBlockOf(linalg::GenericOp op);

  /// A reduction stage over `extent` values of the innermost input dimension; the
  /// schedule places it (computed once per row, never inlined per element).
  Func reductionStage(Value result, const std::string &name, ArrayRef<int64_t> shape);

  /// The value of `tensor` at `index` (MLIR order).
  FailureOr<Expr> read(Operation *user, Value tensor, ArrayRef<Expr> index);
  FailureOr<Expr> scalar(Operation *user, Value value);
  /// Defines `result` as `f(vars) = body`, vars in MLIR order.
  void define(Value result, ArrayRef<Var> vars, const Expr &body);
  Func newFunc(Value result);
  std::vector<int64_t> shapeOf(Value value) {
    return cast<RankedTensorType>(value.getType()).getShape().vec();
  }

  DispatchOp dispatch;
  LoweringOptions options;
  LoweredKernel kernel;
  llvm::DenseMap<Value, Func> tensors;
  /// Packed quantized tensors: their bytes, read through dequantizeAt.
  llvm::DenseMap<Value, PackedTensor> packed;
  /// Results of kiln.dequantize (decoded wherever they are read): their block size.
  llvm::DenseMap<Value, int64_t> decodedBlocks;
  /// An attention result's context stage, computed tile by tile into the output.
  llvm::DenseMap<Value, std::string> attentionContexts;
  llvm::DenseMap<Value, Expr> scalars;
  /// Output Funcs that place themselves (Stage::placeItself), by name: kiln.cache_write,
  /// whose update writes rows chosen at run time, which the generic placement (threads
  /// over the outermost dimension) cannot split.
  llvm::StringMap<std::function<void(const KernelSchedule &)>> selfPlacedOutputs;
  unsigned nextFunc = 0;
};

Func KernelBuilder::newFunc(Value result) {
  return Func(kernel.name + "_f" + std::to_string(nextFunc++));
}

void KernelBuilder::define(Value result, ArrayRef<Var> vars, const Expr &body) {
  Func f = newFunc(result);
  Halide::Type type = *toHalideType(cast<RankedTensorType>(result.getType()).getElementType());
  f(reversed(vars)) = Halide::cast(type, body);
  tensors[result] = f;
}

FailureOr<Expr> KernelBuilder::read(Operation *user, Value tensor, ArrayRef<Expr> index) {
  auto it = tensors.find(tensor);
  if (it == tensors.end()) {
    if (tensor.getDefiningOp<tensor::EmptyOp>())
      return user->emitOpError("reads the contents of a tensor.empty, which are undefined");
    return user->emitOpError("reads a tensor the Halide backend has no definition for");
  }
  return Expr(it->second(reversed(index)));
}

FailureOr<Expr> KernelBuilder::scalar(Operation *user, Value value) {
  auto it = scalars.find(value);
  if (it != scalars.end())
    return it->second;
  if (auto constant = value.getDefiningOp<arith::ConstantOp>())
    if (succeeded(lowerConstant(constant)))
      return scalars[value];
  return user->emitOpError("uses a scalar the Halide backend has no definition for");
}

/// Whether dispatch input `arg` is an f16 weight the artifact emitter found finite
/// (`kiln.finite`) that the body only widens to f32 (element by element, as
/// FuseElementwise fuses a weight's widening into its reader).
bool KernelBuilder::isFiniteHalfWeight(BlockArgument arg) {
  auto weight = dispatch->getOperand(arg.getArgNumber()).getDefiningOp<WeightOp>();
  auto type = dyn_cast<RankedTensorType>(arg.getType());
  if (!weight || !weight->hasAttr("kiln.finite") || !type || !type.getElementType().isF16())
    return false;
  return llvm::all_of(arg.getUsers(), [&](Operation *user) {
    auto widen = dyn_cast<linalg::GenericOp>(user);
    return widen && isElementwiseWidening(widen) && widen.getDpsInputOperand(0)->get() == arg;
  });
}

FailureOr<LoweredKernel> KernelBuilder::build() {
  Block &body = dispatch.getBody().front();
  for (auto [i, arg] : llvm::enumerate(body.getArguments())) {
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    auto quant = type ? dyn_cast<QuantType>(type.getElementType()) : QuantType();
    std::optional<Halide::Type> element =
        quant ? Halide::UInt(8) : type ? toHalideType(type.getElementType()) : std::nullopt;
    if (!type || !type.hasStaticShape() || !element)
      return dispatch.emitOpError("input #")
             << i << " has type " << arg.getType()
             << ", which the Halide backend cannot consume (expected a statically shaped "
                "tensor of f16, bf16, f32, f64, i1 to i64 or !kiln.quant)";
    // A packed tensor arrives as its bytes: the innermost dimension counts bytes.
    SmallVector<int64_t> shape =
        quant ? quant.getPackedShape(type.getShape()) : SmallVector<int64_t>(type.getShape());
    Halide::ImageParam param(*element, type.getRank(), kernel.name + "_in" + std::to_string(i));
    // Inputs are dense row-major buffers of exactly this shape.
    int64_t stride = 1;
    for (int d = 0; d < type.getRank(); ++d) {
      int64_t extent = shape[type.getRank() - 1 - d];
      param.dim(d).set_bounds(0, static_cast<int>(extent)).set_stride(static_cast<int>(stride));
      stride *= extent;
    }
    kernel.inputs.push_back(param);
    std::vector<Var> vars = makeVars(type.getRank(), "i");
    Func wrapper(kernel.name + "_in" + std::to_string(i) + "_f");
    if (options.narrow64BitInputs && element->is_int_or_uint() && element->bits() == 64) {
      std::vector<Halide::Expr> at(vars.begin(), vars.end());
      wrapper(vars) = Halide::cast(element->with_bits(32), param(at));
      kernel.hostStages.push_back(wrapper);
      kernel.context += "narrowed input " + std::to_string(i) + ";";
    } else if (vars.empty()) {
      wrapper() = param();
    } else if (isFiniteHalfWeight(arg)) {
      // Widened here, in the short form only finite values allow; the widening copies
      // reading it see f32 already (their extf then changes nothing).
      wrapper(vars) = widenFiniteHalf(param(vars));
      kernel.context += "finite f16 input " + std::to_string(i) + ";";
    } else {
      wrapper(vars) = param(vars);
    }
    if (quant)
      packed[arg] = {wrapper, quant, options.hardwareHalfToFloat};
    else
      tensors[arg] = wrapper;
  }

  for (Operation &op : body.without_terminator())
    if (failed(lowerOp(&op)))
      return failure();

  for (auto [i, value] : llvm::enumerate(dispatch.getYield().getValues())) {
    auto type = dyn_cast<RankedTensorType>(value.getType());
    if (!type || !tensors.count(value))
      return dispatch.emitOpError("result #") << i << " is not a tensor the kernel computes";
    Func f = tensors[value];
    // An output Func must be distinct from the inputs and the other outputs; a
    // reduction gets its own output Func too, so that the schedule may compute it
    // tile by tile into the output (its accumulators then stay in registers).
    Stage *reduction = kernel.stage(f.name());
    // The reduction the output is computed from tile by tile, if any.
    std::string tiledReduction;
    // A 64-bit integer result where the GPU has none is copied out on the host, widened
    // from the 32 bits its narrowed inputs carry.
    std::optional<Halide::Type> resultType = toHalideType(type.getElementType());
    bool widened = options.narrow64BitInputs && resultType && resultType->is_int_or_uint() &&
                   resultType->bits() == 64;
    bool needsCopy = widened || isa<BlockArgument>(value) || reduction ||
                     llvm::any_of(kernel.outputs, [&](const Func &o) { return o.name() == f.name(); });
    if (needsCopy) {
      std::vector<Var> vars = makeVars(type.getRank(), "o");
      Func copy(kernel.name + "_out" + std::to_string(i));
      Expr element = f(reversed(ArrayRef<Var>(vars)));
      copy(reversed(ArrayRef<Var>(vars))) = widened ? Halide::cast(*resultType, element) : element;
      if (widened)
        kernel.hostStages.push_back(copy);
      else if (reduction)
        tiledReduction = f.name();
      f = copy;
    } else if (auto context = attentionContexts.find(value); context != attentionContexts.end()) {
      // The attention's output divides each context row by its softmax total: computed
      // per tile of the context.
      tiledReduction = context->second;
    } else if (linalg::GenericOp source = epilogueSource(value, dispatch.getYield())) {
      tiledReduction = tensors[source.getResult(0)].name();
    }
    if (Stage *tiled = tiledReduction.empty() ? nullptr : kernel.stage(tiledReduction))
      if (tiled->tiledInto.empty())
        tiled->tiledInto = f.name();
    for (int d = 0; d < type.getRank(); ++d)
      f.output_buffer().dim(d).set_bounds(
          0, static_cast<int>(type.getShape()[type.getRank() - 1 - d]));
    kernel.outputs.push_back(f);
    kernel.stages.push_back({f, type.getShape().vec(), /*isOutput=*/true, "", 1});
    if (auto placement = selfPlacedOutputs.find(f.name()); placement != selfPlacedOutputs.end())
      kernel.stages.back().placeItself = placement->second;
  }
  return std::move(kernel);
}

LogicalResult KernelBuilder::lowerOp(Operation *op) {
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](linalg::GenericOp generic) { return lowerGeneric(generic); })
      .Case([&](arith::ConstantOp constant) { return lowerConstant(constant); })
      .Case([&](tensor::EmptyOp) { return success(); })
      .Case([&](tensor::ExpandShapeOp reshape) {
        return lowerReshape(reshape, reshape.getSrc(), reshape.getResult(),
                            reshape.getReassociationIndices(), /*expand=*/true);
      })
      .Case([&](tensor::CollapseShapeOp reshape) {
        return lowerReshape(reshape, reshape.getSrc(), reshape.getResult(),
                            reshape.getReassociationIndices(), /*expand=*/false);
      })
      .Case([&](tensor::ExtractSliceOp slice) { return lowerExtractSlice(slice); })
      .Case([&](tensor::ConcatOp concat) { return lowerConcat(concat); })
      .Case([&](tensor::PadOp pad) { return lowerPad(pad); })
      .Case([&](GatherOp gather) { return lowerGather(gather); })
      .Case([&](DequantizeOp dequantize) { return lowerDequantize(dequantize); })
      .Case([&](RmsNormOp norm) { return lowerRmsNorm(norm); })
      .Case([&](RopeOp rope) { return lowerRope(rope); })
      .Case([&](AttentionOp attention) { return lowerAttention(attention); })
      .Case([&](CacheWriteOp write) { return lowerCacheWrite(write); })
      .Case([&](CausalConv1dOp conv) { return lowerCausalConv1d(conv); })
      .Case([&](SelectiveScanOp scan) { return lowerSelectiveScan(scan); })
      .Case([&](WkvOp wkv) { return lowerWkv(wkv); })
      .Case([&](Wkv7Op wkv) { return lowerWkv7(wkv); })
      .Default([](Operation *op) {
        return op->emitOpError("is not supported by the Halide backend");
      });
}

LogicalResult KernelBuilder::lowerConstant(arith::ConstantOp op) {
  Attribute value = op.getValue();
  if (!isa<ShapedType>(op.getType())) {
    FailureOr<Expr> e = lowerScalarOp(op, {});
    if (failed(e))
      return failure();
    scalars[op.getResult()] = *e;
    return success();
  }
  auto splat = dyn_cast<SplatElementsAttr>(value);
  auto type = cast<RankedTensorType>(op.getType());
  if (!splat || !toHalideType(type.getElementType()))
    return op.emitOpError("is a non-splat tensor constant inside a kernel; it should be a "
                          "kernel input");
  Expr element;
  Halide::Type htype = *toHalideType(type.getElementType());
  if (splat.getElementType().isIntOrIndex())
    element = htype.is_bool() ? Halide::Internal::make_bool(splat.getSplatValue<APInt>().getBoolValue())
                              : Halide::Internal::make_const(htype, static_cast<int64_t>(
                                                   splat.getSplatValue<APInt>().getSExtValue()));
  else
    element = Halide::Internal::make_const(htype, splat.getSplatValue<APFloat>().convertToDouble());
  define(op.getResult(), makeVars(type.getRank(), "c"), element);
  return success();
}

/// Evaluates an affine expression of loop indices.
Expr evalAffine(AffineExpr expr, ArrayRef<Expr> dims) {
  switch (expr.getKind()) {
  case AffineExprKind::DimId:
    return dims[cast<AffineDimExpr>(expr).getPosition()];
  case AffineExprKind::Constant:
    return Expr(static_cast<int>(cast<AffineConstantExpr>(expr).getValue()));
  case AffineExprKind::SymbolId:
    llvm_unreachable("symbols are rejected before evaluation");
  default:
    break;
  }
  auto binary = cast<AffineBinaryOpExpr>(expr);
  Expr lhs = evalAffine(binary.getLHS(), dims), rhs = evalAffine(binary.getRHS(), dims);
  switch (expr.getKind()) {
  case AffineExprKind::Add:
    return lhs + rhs;
  case AffineExprKind::Mul:
    return lhs * rhs;
  case AffineExprKind::FloorDiv:
    return lhs / rhs; // Halide's integer division floors for positive divisors
  case AffineExprKind::Mod:
    return lhs % rhs;
  case AffineExprKind::CeilDiv:
    return (lhs + rhs - 1) / rhs;
  default:
    llvm_unreachable("unexpected affine expression kind");
  }
}

std::vector<Expr> applyMap(AffineMap map, ArrayRef<Expr> loops) {
  std::vector<Expr> index;
  for (AffineExpr result : map.getResults())
    index.push_back(evalAffine(result, loops));
  return index;
}

LogicalResult KernelBuilder::lowerGeneric(linalg::GenericOp op) {
  {
    FailureOr<bool> interleaved = lowerInterleavedProduct(op, options.int8Activations);
    if (failed(interleaved) || *interleaved)
      return interleaved;
    FailureOr<bool> matvec = lowerBlockMatvec(op, options.int8Activations);
    if (failed(matvec) || *matvec)
      return matvec;
    FailureOr<bool> floatMatvec = lowerFloatMatvec(op);
    if (failed(floatMatvec) || *floatMatvec)
      return floatMatvec;
    FailureOr<bool> floatPanel = lowerFloatPanelProduct(op);
    if (failed(floatPanel) || *floatPanel)
      return floatPanel;
  }
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  if (llvm::any_of(ranges, ShapedType::isDynamic))
    return op.emitOpError("has dynamic loop bounds, which the Halide backend does not support");
  for (AffineMap map : op.getIndexingMapsArray())
    if (map.getNumSymbols() != 0)
      return op.emitOpError("has indexing maps with symbols, which are not supported");

  unsigned numLoops = op.getNumLoops();
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  std::vector<Var> vars = makeVars(numLoops, "d");
  std::vector<Expr> loops(numLoops);
  std::vector<Halide::Range> reductionRanges;
  SmallVector<unsigned> reductionDims;
  for (unsigned d = 0; d < numLoops; ++d) {
    if (iterators[d] == utils::IteratorType::reduction) {
      reductionDims.push_back(d);
      reductionRanges.emplace_back(0, static_cast<int>(ranges[d]));
    } else {
      loops[d] = vars[d];
    }
  }
  bool isReduction = !reductionDims.empty();
  Halide::RDom rdom;
  if (isReduction) {
    rdom = Halide::RDom(reductionRanges, "red");
    for (auto [i, d] : llvm::enumerate(reductionDims))
      loops[d] = rdom[i];
  }

  // Output coordinates: each output map must be a permutation of parallel loops.
  unsigned numOutputs = op.getNumDpsInits();
  std::vector<std::vector<Var>> outVars(numOutputs);
  for (unsigned j = 0; j < numOutputs; ++j) {
    AffineMap map = op.getMatchingIndexingMap(op.getDpsInitOperand(j));
    for (AffineExpr result : map.getResults()) {
      auto dim = dyn_cast<AffineDimExpr>(result);
      if (!dim || iterators[dim.getPosition()] == utils::IteratorType::reduction)
        return op.emitOpError("has an output indexing map that is not a projection of its "
                              "parallel loops, which the Halide backend does not support");
      outVars[j].push_back(vars[dim.getPosition()]);
    }
  }
  Func reductionFunc;
  if (isReduction) {
    if (numOutputs > 1 &&
        llvm::any_of(outVars, [&](const std::vector<Var> &v) {
          return v.size() != outVars[0].size() ||
                 !std::equal(v.begin(), v.end(), outVars[0].begin(),
                             [](const Var &a, const Var &b) { return a.same_as(b); });
        }))
      return op.emitOpError("is a multi-output reduction whose outputs are indexed "
                            "differently, which the Halide backend does not support");
    reductionFunc = newFunc(op->getResult(0));
    // The initial value comes from the outs operands; it must be defined before the
    // body (which reads the running value) is translated.
    std::vector<Expr> initial;
    for (unsigned j = 0; j < numOutputs; ++j) {
      AffineMap map = op.getMatchingIndexingMap(op.getDpsInitOperand(j));
      FailureOr<Expr> value = read(op, op.getDpsInitOperand(j)->get(), applyMap(map, loops));
      if (failed(value))
        return failure();
      initial.push_back(*value);
    }
    std::vector<Var> pure = reversed(ArrayRef<Var>(outVars[0]));
    if (numOutputs == 1)
      reductionFunc(pure) = initial[0];
    else
      reductionFunc(pure) = Halide::Tuple(initial);
  }

  Block &body = op.getRegion().front();
  llvm::DenseMap<Value, Expr> env;
  for (OpOperand *input : op.getDpsInputOperands()) {
    Value source = input->get();
    BlockArgument arg = body.getArgument(input->getOperandNumber());
    if (isa<RankedTensorType>(source.getType())) {
      FailureOr<Expr> value =
          read(op, source, applyMap(op.getMatchingIndexingMap(input), loops));
      if (failed(value))
        return failure();
      env[arg] = *value;
    } else {
      FailureOr<Expr> value = scalar(op, source);
      if (failed(value))
        return failure();
      env[arg] = *value;
    }
  }
  for (unsigned j = 0; j < numOutputs; ++j) {
    BlockArgument arg = body.getArgument(op.getNumDpsInputs() + j);
    if (arg.use_empty())
      continue;
    std::vector<Expr> at = asExprs(outVars[j]);
    if (isReduction) {
      Halide::FuncRef current = reductionFunc(reversed(ArrayRef<Expr>(at)));
      env[arg] = numOutputs > 1 ? Expr(current[j]) : Expr(current);
    } else {
      FailureOr<Expr> value =
          read(op, op.getDpsInitOperand(j)->get(),
               applyMap(op.getMatchingIndexingMap(op.getDpsInitOperand(j)), loops));
      if (failed(value))
        return failure();
      env[arg] = *value;
    }
  }

  for (Operation &inner : body.without_terminator()) {
    if (auto index = dyn_cast<linalg::IndexOp>(inner)) {
      env[index.getResult()] = loops[index.getDim()];
      continue;
    }
    std::vector<Expr> operands;
    for (Value operand : inner.getOperands()) {
      auto it = env.find(operand);
      if (it != env.end()) {
        operands.push_back(it->second);
        continue;
      }
      FailureOr<Expr> captured = scalar(&inner, operand);
      if (failed(captured))
        return failure();
      operands.push_back(*captured);
    }
    FailureOr<Expr> e = lowerScalarOp(&inner, operands);
    if (failed(e))
      return failure();
    env[inner.getResult(0)] = *e;
  }

  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  std::vector<Expr> values;
  for (auto [j, value] : llvm::enumerate(yield.getValues())) {
    auto it = env.find(value);
    Expr e;
    if (it != env.end()) {
      e = it->second;
    } else {
      FailureOr<Expr> captured = scalar(op, value);
      if (failed(captured))
        return failure();
      e = *captured;
    }
    Type element = cast<RankedTensorType>(op->getResult(j).getType()).getElementType();
    values.push_back(Halide::cast(*toHalideType(element), e));
  }

  if (!isReduction) {
    for (unsigned j = 0; j < numOutputs; ++j) {
      Func f = newFunc(op->getResult(j));
      f(reversed(ArrayRef<Var>(outVars[j]))) = values[j];
      tensors[op->getResult(j)] = f;
    }
    return success();
  }

  // One update per point of the reduction domain.
  std::vector<Var> lhs = reversed(ArrayRef<Var>(outVars[0]));
  std::vector<Expr> lhsExprs = asExprs(lhs);
  if (numOutputs == 1)
    reductionFunc(lhsExprs) = values[0];
  else
    reductionFunc(lhsExprs) = Halide::Tuple(values);
  std::vector<int64_t> shape = shapeOf(op->getResult(0));
  int64_t reductionSize = 1;
  for (unsigned d : reductionDims)
    reductionSize *= ranges[d];
  // The tensors read along the innermost output dimension (the tile's vectors), and
  // every loop they index: the tile's rows are an output dimension outside that set.
  std::vector<Stage::VectorOperand> vectorOperands;
  llvm::SmallBitVector read(op.getNumLoops());
  AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  int tileRowArg = 1;
  if (outMap.getNumResults() > 0) {
    unsigned innermost = outMap.getDimPosition(outMap.getNumResults() - 1);
    for (OpOperand *input : op.getDpsInputOperands()) {
      AffineMap map = op.getMatchingIndexingMap(input);
      if (!isa<RankedTensorType>(input->get().getType()) || !map.isFunctionOfDim(innermost))
        continue;
      for (unsigned d = 0; d < map.getNumDims(); ++d)
        if (map.isFunctionOfDim(d))
          read.set(d);
      auto it = tensors.find(input->get());
      if (it == tensors.end())
        continue;
      int arg = 0;
      for (unsigned j = 0; j < map.getNumResults(); ++j)
        if (map.getResult(j).isFunctionOfDim(innermost))
          arg = static_cast<int>(map.getNumResults() - 1 - j);
      vectorOperands.push_back({it->second, arg});
    }
    tileRowArg = tileRowArgOf(outMap, read);
  }
  kernel.stages.push_back({reductionFunc, shape, /*isOutput=*/false, "", reductionSize,
                           decodedBlockOf(op), tileRowArg, vectorOperands});
  if (numOutputs == 1) {
    tensors[op->getResult(0)] = reductionFunc;
    return success();
  }
  for (unsigned j = 0; j < numOutputs; ++j) {
    Func element = newFunc(op->getResult(j));
    element(lhs) = reductionFunc(lhs)[j];
    tensors[op->getResult(j)] = element;
  }
  return success();
}

LogicalResult KernelBuilder::lowerReshape(Operation *op, Value source, Value result,
                                          ArrayRef<ReassociationIndices> groups, bool expand) {
  std::vector<int64_t> srcShape = shapeOf(source), dstShape = shapeOf(result);
  std::vector<Var> vars = makeVars(dstShape.size(), "r");
  std::vector<Expr> srcIndex(srcShape.size());
  // Each group pairs one dimension of the collapsed side with several of the expanded
  // side; a row-major reshape linearizes within the group.
  const std::vector<int64_t> &expandedShape = expand ? dstShape : srcShape;
  for (auto [g, group] : llvm::enumerate(groups)) {
    if (expand) {
      Expr linear = 0;
      for (int64_t d : group)
        linear = linear * static_cast<int>(expandedShape[d]) + vars[d];
      srcIndex[g] = linear;
    } else {
      Expr linear = vars[g];
      for (auto it = group.rbegin(); it != group.rend(); ++it) {
        int extent = static_cast<int>(expandedShape[*it]);
        srcIndex[*it] = linear % extent;
        linear = linear / extent;
      }
    }
  }
  FailureOr<Expr> value = read(op, source, srcIndex);
  if (failed(value))
    return failure();
  define(result, vars, *value);
  return success();
}

LogicalResult KernelBuilder::lowerExtractSlice(tensor::ExtractSliceOp op) {
  if (op.getSourceType().getNumDynamicDims() || ShapedType::isDynamicShape(op.getStaticOffsets()) ||
      ShapedType::isDynamicShape(op.getStaticSizes()) ||
      ShapedType::isDynamicShape(op.getStaticStrides()))
    return op.emitOpError("has dynamic offsets, sizes or strides, which are not supported");
  llvm::SmallBitVector dropped = op.getDroppedDims();
  std::vector<Var> vars = makeVars(op.getType().getRank(), "s");
  std::vector<Expr> srcIndex;
  unsigned next = 0;
  for (unsigned d = 0; d < op.getSourceType().getRank(); ++d) {
    Expr coordinate = dropped.test(d) ? Expr(0) : Expr(vars[next++]);
    srcIndex.push_back(static_cast<int>(op.getStaticOffsets()[d]) +
                       static_cast<int>(op.getStaticStrides()[d]) * coordinate);
  }
  FailureOr<Expr> value = read(op, op.getSource(), srcIndex);
  if (failed(value))
    return failure();
  define(op.getResult(), vars, *value);
  return success();
}

LogicalResult KernelBuilder::lowerConcat(tensor::ConcatOp op) {
  std::vector<Var> vars = makeVars(op.getType().getRank(), "k");
  uint64_t dim = op.getDim();
  // select(i >= start_k, input_k(i - start_k), <inputs before k>), reads clamped so
  // bounds inference never asks an input for rows it does not have.
  Expr result;
  int64_t start = 0;
  for (Value input : op.getInputs()) {
    int64_t extent = cast<RankedTensorType>(input.getType()).getDimSize(dim);
    if (extent == 0)
      continue;
    std::vector<Expr> index = asExprs(vars);
    index[dim] = clampIndex(vars[dim] - static_cast<int>(start), extent);
    FailureOr<Expr> value = read(op, input, index);
    if (failed(value))
      return failure();
    result = result.defined() ? Halide::select(vars[dim] >= static_cast<int>(start), *value, result)
                              : *value;
    start += extent;
  }
  define(op.getResult(), vars, result);
  return success();
}

LogicalResult KernelBuilder::lowerPad(tensor::PadOp op) {
  Value padValue = op.getConstantPaddingValue();
  if (!padValue)
    return op.emitOpError("pads with a non-constant value, which is not supported");
  if (ShapedType::isDynamicShape(op.getStaticLow()) || ShapedType::isDynamicShape(op.getStaticHigh()))
    return op.emitOpError("has dynamic padding, which is not supported");
  FailureOr<Expr> pad = scalar(op, padValue);
  if (failed(pad))
    return failure();
  std::vector<int64_t> srcShape = shapeOf(op.getSource());
  std::vector<Var> vars = makeVars(srcShape.size(), "p");
  std::vector<Expr> index;
  Expr inside = Halide::Internal::const_true();
  for (unsigned d = 0; d < srcShape.size(); ++d) {
    Expr shifted = vars[d] - static_cast<int>(op.getStaticLow()[d]);
    inside = inside && shifted >= 0 && shifted < static_cast<int>(srcShape[d]);
    index.push_back(clampIndex(shifted, srcShape[d]));
  }
  FailureOr<Expr> value = read(op, op.getSource(), index);
  if (failed(value))
    return failure();
  define(op.getResult(), vars, Halide::select(inside, *value, Halide::cast(value->type(), *pad)));
  return success();
}

LogicalResult KernelBuilder::lowerGather(GatherOp op) {
  auto table = cast<RankedTensorType>(op.getTable().getType());
  int64_t axis = op.getAxis();
  int64_t indexRank = cast<RankedTensorType>(op.getIndices().getType()).getRank();
  std::vector<Var> vars = makeVars(cast<RankedTensorType>(op.getType()).getRank(), "g");
  std::vector<Expr> indexAt(vars.begin() + axis, vars.begin() + axis + indexRank);
  FailureOr<Expr> index = read(op, op.getIndices(), indexAt);
  if (failed(index))
    return failure();
  std::vector<Expr> tableAt(vars.begin(), vars.begin() + axis);
  // Out-of-range indices are clamped, never read out of bounds.
  tableAt.push_back(clampIndex(Halide::cast(Halide::Int(32), *index), table.getDimSize(axis)));
  tableAt.insert(tableAt.end(), vars.begin() + axis + indexRank, vars.end());
  auto packedTable = packed.find(op.getTable());
  if (packedTable != packed.end()) {
    // A packed embedding table: dequantize only the gathered rows (axis 0, verified).
    std::vector<Expr> rows(tableAt.begin(), tableAt.end() - 1);
    define(op.getResult(), vars,
           dequantizeAt(packedTable->second, rows, tableAt.back(), Expr(), Expr()));
    return success();
  }
  FailureOr<Expr> value = read(op, op.getTable(), tableAt);
  if (failed(value))
    return failure();
  define(op.getResult(), vars, *value);
  return success();
}

int64_t KernelBuilder::decodedBlockOf(linalg::GenericOp op) {
  int64_t block = 0;
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  for (OpOperand *input : op.getDpsInputOperands()) {
    auto it = decodedBlocks.find(input->get());
    if (it == decodedBlocks.end())
      continue;
    AffineMap map = op.getMatchingIndexingMap(input);
    auto packedDim = dyn_cast<AffineDimExpr>(map.getResults().back());
    if (!packedDim || iterators[packedDim.getPosition()] != utils::IteratorType::reduction ||
        (block != 0 && block != it->second))
      return 0;
    block = it->second;
  }
  return block;
}

Func KernelBuilder::reductionStage(Value result, const std::string &name,
                                   ArrayRef<int64_t> shape) {
  Func f(kernel.name + "_" + name + std::to_string(nextFunc++));
  kernel.stages.push_back({f, shape.vec(), /*isOutput=*/false, "", 1});
  return f;
}

LogicalResult KernelBuilder::lowerDequantize(DequantizeOp op) {
  auto it = packed.find(op.getInput());
  if (it == packed.end())
    return op.emitOpError("dequantizes a tensor that is not a kernel input, which the Halide "
                          "backend does not support");
  auto type = cast<RankedTensorType>(op.getType());
  QuantType quant = it->second.quant;
  std::vector<Var> vars = makeVars(type.getRank(), "q");
  std::vector<Expr> rows(vars.begin(), vars.end() - 1);
  Expr col = vars.back();
  Expr scale, zeroPoint;
  if (quant.isGroupWise()) {
    std::vector<Expr> groupAt = rows;
    groupAt.push_back(col / static_cast<int>(quant.getGroupSize()));
    FailureOr<Expr> s = read(op, op.getScales(), groupAt);
    if (failed(s))
      return failure();
    scale = Halide::cast(Halide::Float(32), *s);
    if (op.getZeroPoints()) {
      FailureOr<Expr> z = read(op, op.getZeroPoints(), groupAt);
      if (failed(z))
        return failure();
      zeroPoint = Halide::cast(Halide::Float(32), *z);
    }
  }
  define(op.getResult(), vars, dequantizeAt(it->second, rows, col, scale, zeroPoint));
  decodedBlocks[op.getResult()] = quant.getBlockElements();
  return success();
}

LogicalResult KernelBuilder::lowerRmsNorm(RmsNormOp op) {
  std::vector<int64_t> shape = shapeOf(op.getInput());
  int64_t width = shape.back();
  std::vector<Var> vars = makeVars(shape.size(), "n");
  std::vector<Var> rowVars(vars.begin(), vars.end() - 1);
  std::vector<int64_t> rowShape(shape.begin(), shape.end() - 1);
  Halide::RDom k(0, static_cast<int>(width), "rms_k");
  std::vector<Expr> atK = asExprs(rowVars);
  atK.push_back(k);
  FailureOr<Expr> xk = read(op, op.getInput(), atK);
  if (failed(xk))
    return failure();
  // Sum of squares per row, in f32 whatever the storage type.
  Func sumSquares = reductionStage(op.getResult(), "sumsq", rowShape);
  std::vector<Var> rowArgs = reversed(ArrayRef<Var>(rowVars));
  sumSquares(rowArgs) = 0.0f;
  Expr xf = Halide::cast(Halide::Float(32), *xk);
  sumSquares(asExprs(rowArgs)) += xf * xf;

  FailureOr<Expr> x = read(op, op.getInput(), asExprs(vars));
  FailureOr<Expr> w = read(op, op.getWeight(), {Expr(vars.back())});
  if (failed(x) || failed(w))
    return failure();
  Expr meanSquare = sumSquares(rowArgs) / static_cast<float>(width);
  Expr inverse = 1.0f / Halide::sqrt(meanSquare + op.getEpsilon().convertToFloat());
  define(op.getResult(), vars,
         Halide::cast(Halide::Float(32), *x) * inverse * Halide::cast(Halide::Float(32), *w));
  return success();
}

LogicalResult KernelBuilder::lowerRope(RopeOp op) {
  std::vector<int64_t> shape = shapeOf(op.getInput());
  size_t rank = shape.size();
  int64_t headDim = shape.back();
  int64_t rotary = op.getRotaryDim().value_or(headDim);
  bool neox = op.getMode() == RopeMode::neox;
  std::vector<Var> vars = makeVars(rank, "e");
  Expr c = vars.back();
  Expr pair = neox ? c % static_cast<int>(rotary / 2) : c / 2;
  Expr partner = neox ? Halide::select(c < static_cast<int>(rotary / 2), c + static_cast<int>(rotary / 2),
                                        c - static_cast<int>(rotary / 2))
                      : (c ^ 1);
  Expr first = neox ? c < static_cast<int>(rotary / 2) : (c % 2 == 0);
  // angle = position * freq_scale * theta^(-2 pair / rotary_dim), in f32 as llama.cpp
  // computes it: its cosine and sine once per (row, pair), shared by every head (computed
  // per element they were 3 transcendentals per value: 1.16 ms for a 128 x 32 x 64 rope
  // at 2 threads, 1.6% of a TinyLlama-shaped prefill).
  Var pv("rope_p"), tv("rope_t");
  FailureOr<Expr> position = read(op, op.getPositions(), {Expr(tv)});
  if (failed(position))
    return failure();
  Expr exponent = -2.0f * Halide::cast(Halide::Float(32), pv) / static_cast<float>(rotary);
  Expr angle = Halide::cast(Halide::Float(32), *position) *
               static_cast<float>(op.getFreqScale().convertToDouble()) *
               Halide::pow(static_cast<float>(op.getTheta().convertToDouble()), exponent);
  Func trig(kernel.name + "_rope" + std::to_string(nextFunc++));
  trig(pv, tv) = {Halide::cos(angle), Halide::sin(angle)};
  int64_t pairs = rotary / 2;
  rootStage(trig, {shape[rank - 3], pairs}, [trig, pv, pairs](const KernelSchedule &s) mutable {
    trig.compute_root();
    if (s.vectorWidth > 1 && pairs >= s.vectorWidth)
      trig.vectorize(pv, static_cast<int>(s.vectorWidth), Halide::TailStrategy::GuardWithIf);
  });
  Expr pairAt = Halide::clamp(pair, 0, static_cast<int>(pairs - 1));
  Expr cosine = trig(pairAt, vars[rank - 3])[0], sine = trig(pairAt, vars[rank - 3])[1];
  std::vector<Expr> at = asExprs(vars);
  std::vector<Expr> partnerAt = at;
  partnerAt.back() = Halide::clamp(partner, 0, static_cast<int>(headDim - 1));
  FailureOr<Expr> x = read(op, op.getInput(), at);
  FailureOr<Expr> y = read(op, op.getInput(), partnerAt);
  if (failed(x) || failed(y))
    return failure();
  Expr xf = Halide::cast(Halide::Float(32), *x), yf = Halide::cast(Halide::Float(32), *y);
  Expr rotated = xf * cosine + Halide::select(first, -yf, yf) * sine;
  define(op.getResult(), vars, Halide::select(c < static_cast<int>(rotary), rotated, xf));
  return success();
}

LogicalResult KernelBuilder::lowerAttention(AttentionOp op) {
  std::vector<int64_t> qShape = shapeOf(op.getQuery()), kShape = shapeOf(op.getKey());
  std::vector<int64_t> outShape = shapeOf(op.getResult());
  size_t rank = qShape.size();
  int64_t seq = qShape[rank - 3], heads = qShape[rank - 2], headDim = qShape[rank - 1];
  int64_t keys = kShape[rank - 3], kvHeads = kShape[rank - 2];
  int64_t group = heads / kvHeads;
  // A ring of `rows` rows over `keys` positions (ring_positions): the scores are indexed
  // by position, the key and value rows read at position mod rows.
  int64_t rows = keys;
  if (std::optional<int64_t> positions = op.getRingPositions())
    keys = *positions;
  float scale = op.getScale() ? static_cast<float>(op.getScale()->convertToDouble())
                              : 1.0f / std::sqrt(static_cast<float>(headDim));

  // Index spaces, MLIR order: scores are [..., S, Hq, T]; the output [..., S, Hq, Dv].
  std::vector<Var> sv = makeVars(rank, "a"); // [..., s, h, t]
  std::vector<Var> batch(sv.begin(), sv.end() - 3);
  Var s = sv[rank - 3], h = sv[rank - 2], t = sv[rank - 1];
  Expr kvHead = h / static_cast<int>(group);
  std::vector<int64_t> scoreShape(qShape.begin(), qShape.end() - 1);
  scoreShape.push_back(keys);
  std::vector<int64_t> rowShape(scoreShape.begin(), scoreShape.end() - 1);

  auto at = [&](std::initializer_list<Expr> tail) {
    std::vector<Expr> index = asExprs(batch);
    index.insert(index.end(), tail);
    return index;
  };
  Halide::RDom d(0, static_cast<int>(headDim), "att_d");
  auto keyRow = [&](const Expr &position) {
    return rows == keys ? position : position % static_cast<int>(rows);
  };
  FailureOr<Expr> q = read(op, op.getQuery(), at({s, h, d}));
  if (failed(q))
    return failure();
  // Without a run-time query offset every key is read: the scores (Q K^T) and the
  // context (weights V) are GEMMs, tiled like any contraction (rows: queries; the
  // scores' columns: keys, whose [t, head, d] rows the schedule copies transposed).
  // With an offset (a KV cache) too, over the visible keys only (a range known at run
  // time). A tile's rows are its queries, or for one query (a decode step) its heads,
  // so that a group of query heads shares each key and value vector it loads. Before,
  // with an offset, every score was a dot product of its own (vectors of keys gathered
  // across cache rows): TinyLlama-shaped at 118 keys, 2 threads, a 128-query prefill's
  // attention took 4.5 -> 1.3 ms, a decode step's 68 -> 56 us (Gemma 3: 64 -> 47 us).
  int tileRowArg = seq == 1 ? 1 : 2; // h or s, in [t, h, s, batch...]
  // The keys by position: with an offset, the tiles' vectors of keys cover the visible
  // range, shifted inwards by Halide where it is shorter than a vector (the lanes outside
  // it, never used, read keys clamped into the cache); the transposed copy the schedule
  // makes of them is indexed by position, so a ring's `mod rows` is taken there, not in
  // the product's vector loads.
  std::vector<Var> kv = makeVars(rank, "key"); // [..., t, kv head, d]
  Func keysAt(kernel.name + "_keys" + std::to_string(nextFunc++));
  {
    Expr position = kv[rank - 3];
    if (op.getQueryOffset())
      position = Halide::clamp(position, 0, static_cast<int>(keys - 1));
    std::vector<Expr> keyAt(kv.begin(), kv.end() - 3);
    keyAt.push_back(keyRow(position));
    keyAt.push_back(kv[rank - 2]);
    keyAt.push_back(kv[rank - 1]);
    FailureOr<Expr> key = read(op, op.getKey(), keyAt);
    if (failed(key))
      return failure();
    keysAt(reversed(ArrayRef<Var>(kv))) = *key;
  }
  std::vector<Expr> keyArgs{Expr(d), kvHead, Expr(t)};
  keyArgs.insert(keyArgs.end(), batch.rbegin(), batch.rend());
  Expr k = keysAt(keyArgs);
  Func dot = reductionStage(op.getResult(), "dot", scoreShape);
  std::vector<Var> scoreArgs = reversed(ArrayRef<Var>(sv));
  dot(scoreArgs) = 0.0f;
  dot(asExprs(scoreArgs)) += Halide::cast(Halide::Float(32), *q) * Halide::cast(Halide::Float(32), k);
  Func scoreTiles(kernel.name + "_scoretiles" + std::to_string(nextFunc++));
  scoreTiles(scoreArgs) = dot(scoreArgs);
  Stage &dotStage = kernel.stages.back();
  dotStage.tiledInto = scoreTiles.name();
  dotStage.reductionSize = headDim;
  dotStage.tileRowArg = tileRowArg;
  dotStage.vectorOperands = {{keysAt, /*columnArg=*/2}}; // t, in [d, kv head, t, ...]
  kernel.stages.push_back({scoreTiles, scoreShape, /*isOutput=*/false, "", 1});

  Expr score = scoreTiles(scoreArgs) * scale;
  if (Value mask = op.getMask()) {
    // [S, T] is shared by the batch; [..., S, T] has one mask per batch entry.
    bool perBatch = cast<RankedTensorType>(mask.getType()).getRank() > 2;
    std::vector<Expr> maskAt = perBatch ? asExprs(batch) : std::vector<Expr>();
    maskAt.push_back(s);
    maskAt.push_back(t);
    FailureOr<Expr> m = read(op, mask, maskAt);
    if (failed(m))
      return failure();
    score += Halide::cast(Halide::Float(32), *m);
  }
  if (op.getCausal())
    score = Halide::select(t > s + static_cast<int>(keys - seq), Halide::Float(32).min(), score);
  // With a query offset p (read at run time), query s sees keys p + s - W < t <= p + s.
  Expr firstKey, endKey;
  if (Value offsetTensor = op.getQueryOffset()) {
    FailureOr<Expr> offset = read(op, offsetTensor, {Expr(0)});
    if (failed(offset))
      return failure();
    Expr p = Halide::cast(Halide::Int(32), Halide::clamp(*offset, -1, static_cast<int>(keys)));
    int64_t window = op.getWindow().value_or(0);
    Expr visible = t <= p + s;
    if (window > 0)
      visible = visible && t > p + s - static_cast<int>(window);
    score = Halide::select(visible, score, Halide::Float(32).min());
    endKey = Halide::min(p + static_cast<int>(seq), static_cast<int>(keys));
    firstKey = window > 0 ? Halide::max(p + 1 - static_cast<int>(window), 0) : Expr(0);
  }
  Func scores(kernel.name + "_scores" + std::to_string(nextFunc++));
  scores(scoreArgs) = score;

  // Softmax over t, then the weighted sum of values.
  std::vector<Var> rowVars(sv.begin(), sv.end() - 1);
  std::vector<Var> rowArgs = reversed(ArrayRef<Var>(rowVars));
  Halide::RDom tr(0, static_cast<int>(keys), "att_t");
  // Halide tightens the key loops to the predicate's range and, through bounds
  // inference, the scores computed for them: only the visible cache rows are read.
  if (endKey.defined())
    tr.where(tr >= firstKey && tr < endKey);
  auto withT = [&](const Expr &tt) {
    std::vector<Expr> args{tt};
    args.insert(args.end(), rowArgs.begin(), rowArgs.end());
    return args;
  };
  Func rowMax = reductionStage(op.getResult(), "max", rowShape);
  rowMax(rowArgs) = Halide::Float(32).min();
  rowMax(asExprs(rowArgs)) = Halide::max(rowMax(rowArgs), scores(withT(tr)));
  Func weights(kernel.name + "_weights" + std::to_string(nextFunc++));
  weights(scoreArgs) = Halide::exp(scores(scoreArgs) - rowMax(rowArgs));
  kernel.stages.push_back({weights, scoreShape, /*isOutput=*/false, "", 1});
  Func total = reductionStage(op.getResult(), "sum", rowShape);
  total(rowArgs) = 0.0f;
  total(asExprs(rowArgs)) += weights(withT(tr));

  std::vector<Var> ov = makeVars(rank, "o"); // [..., s, h, dv]
  std::vector<Expr> outRow(ov.begin(), ov.end() - 1);
  std::vector<Expr> vAt(ov.begin(), ov.end() - 3);
  vAt.push_back(keyRow(tr));
  vAt.push_back(ov[rank - 2] / static_cast<int>(group));
  vAt.push_back(ov[rank - 1]);
  FailureOr<Expr> v = read(op, op.getValue(), vAt);
  if (failed(v))
    return failure();
  Func context = reductionStage(op.getResult(), "context", outShape);
  Stage &contextStage = kernel.stages.back();
  contextStage.reductionSize = keys;
  contextStage.tileRowArg = tileRowArg; // [dv, h, s, batch...]
  if (auto it = tensors.find(op.getValue()); it != tensors.end())
    contextStage.vectorOperands = {{it->second, /*columnArg=*/0}};
  attentionContexts[op.getResult()] = context.name();
  std::vector<Var> outArgs = reversed(ArrayRef<Var>(ov));
  context(outArgs) = 0.0f;
  std::vector<Expr> weightAt{tr};
  for (auto it = outRow.rbegin(); it != outRow.rend(); ++it)
    weightAt.push_back(*it);
  context(asExprs(outArgs)) += weights(weightAt) * Halide::cast(Halide::Float(32), *v);
  std::vector<Expr> totalAt(outRow.rbegin(), outRow.rend());
  Type element = cast<RankedTensorType>(op.getType()).getElementType();
  define(op.getResult(), ov,
         Halide::cast(*toHalideType(element), context(outArgs) / total(totalAt)));
  return success();
}

/// Whether `op` is a product [M, K] x [N, K]^T + init over f32 as
/// LinalgBuilder::matmulTransposed writes it (the body out + a * b).
bool isTransposedProduct(linalg::GenericOp op) {
  using utils::IteratorType;
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  if (op.getNumDpsInputs() != 2 || op.getNumDpsInits() != 1 || ranges.size() != 3 ||
      op.getIteratorTypesArray() !=
          SmallVector<IteratorType>{IteratorType::parallel, IteratorType::parallel,
                                    IteratorType::reduction})
    return false;
  MLIRContext *context = op.getContext();
  AffineExpr m, n, k;
  bindDims(context, m, n, k);
  if (op.getIndexingMapsArray() !=
      SmallVector<AffineMap>{AffineMap::get(3, 0, {m, k}, context),
                             AffineMap::get(3, 0, {n, k}, context),
                             AffineMap::get(3, 0, {m, n}, context)})
    return false;
  Type f32 = Float32Type::get(context);
  if (cast<RankedTensorType>(op.getDpsInputOperand(0)->get().getType()).getElementType() != f32 ||
      cast<RankedTensorType>(op->getResult(0).getType()).getElementType() != f32)
    return false;
  Block &body = op.getRegion().front();
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  auto add = yield.getValues()[0].getDefiningOp<arith::AddFOp>();
  auto mul = add ? (add.getLhs() == body.getArgument(2) ? add.getRhs() : add.getLhs())
                       .getDefiningOp<arith::MulFOp>()
                 : arith::MulFOp();
  return add && mul && body.getOperations().size() == 3 &&
         (add.getLhs() == body.getArgument(2) || add.getRhs() == body.getArgument(2)) &&
         ((mul.getLhs() == body.getArgument(0) && mul.getRhs() == body.getArgument(1)) ||
          (mul.getLhs() == body.getArgument(1) && mul.getRhs() == body.getArgument(0)));
}

/// Whether `op` widens its one input to f32 element by element (identity maps, the
/// payload an arith.extf of the input alone): a weight stored as f16 or bf16 read by an
/// f32 computation, as FuseElementwise fuses it into its reader.
bool isElementwiseWidening(linalg::GenericOp op) {
  Block &payload = op.getRegion().front();
  auto extend = dyn_cast<arith::ExtFOp>(payload.front());
  return op.getNumDpsInputs() == 1 && payload.getOperations().size() == 2 && extend &&
         extend.getIn() == payload.getArgument(0) && extend.getType().isF32() &&
         llvm::all_of(op.getIndexingMapsArray(), [](AffineMap map) { return map.isIdentity(); });
}

/// The tensor `value` widens element by element (isElementwiseWidening), or `value`
/// itself; null when `value` is computed some other way by a linalg.generic.
Value storedSource(Value value) {
  if (auto widen = value.getDefiningOp<linalg::GenericOp>())
    return isElementwiseWidening(widen) ? widen.getDpsInputOperand(0)->get() : Value();
  return value;
}

/// Whether `value` is a float tensor the kernel reads from memory as it is stored: a
/// kernel input, or one of f16 or bf16 widened to f32 element by element (the weight
/// widening fused into this kernel).
bool isStoredFloat(Value value) {
  value = storedSource(value);
  if (!value)
    return false;
  auto type = dyn_cast<RankedTensorType>(value.getType());
  return isa<BlockArgument>(value) && type &&
         (type.getElementType().isF32() || type.getElementType().isF16() ||
          type.getElementType().isBF16());
}

PackedProduct KernelBuilder::matchPackedProduct(linalg::GenericOp op) {
  if (!isTransposedProduct(op))
    return {};
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  auto dequantize = op.getDpsInputOperand(1)->get().getDefiningOp<DequantizeOp>();
  if (ranges[2] % 32 != 0 || !dequantize || !packed.count(dequantize.getInput()))
    return {};
  return {&packed.find(dequantize.getInput())->second, op.getDpsInputOperand(0)->get(),
          ranges[0], ranges[1], ranges[2]};
}

/// Where a self-placed product's loops over its result run: the result itself computed
/// at root, or the kernel output that reads it pointwise (a copy, or an epilogue of
/// kiln-fuse-epilogues), the result then inlined into it: no buffer of its own and no
/// second pass over it. `columns` and `rows` are that Func's variables.
struct ProductRoot {
  Func func;
  Var columns, rows;
};

/// Gives a self-placed product's stage both placements of `place` (a callable taking
/// the schedule and a ProductRoot): over `total` (its result, variables `n` and `m`)
/// computed at root, and over an output that total is inlined into.
template <typename Place>
void placeProduct(Stage &stage, Func total, Var n, Var m, Place place) {
  stage.placesProduct = true;
  stage.placeItself = [=](const KernelSchedule &schedule) mutable {
    total.compute_root();
    place(schedule, ProductRoot{total, n, m});
  };
  stage.placeIntoOutput = [=](const KernelSchedule &schedule, Func output) mutable {
    std::vector<Var> args = output.args();
    place(schedule, ProductRoot{output, args[0], args[1]});
  };
}

/// The values of the depth per panel of a product that decodes or widens its weights
/// into a panel first: the knob product_panel, else `standard`, lowered in steps of
/// `step` (which divides `depth`) until it divides `depth`.
int64_t productPanelDepth(const KernelSchedule &schedule, int64_t depth, int64_t standard,
                          int64_t step) {
  int64_t panel = std::min<int64_t>(depth, schedule.productPanel ? schedule.productPanel : standard);
  while (depth % panel)
    panel -= step;
  return panel;
}

/// A one-row product `total(n, m)` = init + rowSum(n, m), rowSum adding up a column's
/// `lanes(l, n, m)` over `overLanes`, scheduled in `root` (total at root, or the output
/// total is inlined into): the columns split into chunks for the threads (at
/// least `minPerChunk` columns, else 16 chunks), each column's lanes computed inside it
/// and added up once, in a scalar of the column's own rather than into the shared output
/// (which took an atomic compare-and-swap per column). With `columnsPerPass` > 1 (which
/// must divide `columns`) the lanes of that many columns are computed together, chunks
/// rounded up to a multiple of it; the caller orders the lanes' loops.
void placeColumnLanes(ProductRoot root, Func rowSum, Func lanes, const Halide::RDom &overLanes,
                      const Var &lv, const std::string &prefix, int64_t columns, int64_t depth,
                      int64_t minPerChunk, bool parallel, int columnsPerPass = 1) {
  Func total = root.func;
  Var nv = root.columns;
  Var chunk(prefix + "_chunk"), column(prefix + "_col");
  int64_t perChunk = std::max<int64_t>(minPerChunk, (columns + 15) / 16);
  perChunk = (perChunk + columnsPerPass - 1) / columnsPerPass * columnsPerPass;
  total.split(nv, chunk, column, static_cast<int>(std::min(perChunk, columns)),
              Halide::TailStrategy::GuardWithIf);
  if (parallel && columns * depth >= 64 * 1024)
    total.parallel(chunk);
  Var pass = column;
  if (columnsPerPass > 1) {
    pass = Var(prefix + "_grp");
    total.split(column, pass, Var(prefix + "_ci"), columnsPerPass);
  }
  rowSum.compute_at(total, pass).update().atomic().vectorize(overLanes);
  lanes.compute_at(total, pass).vectorize(lv);
}

/// One row times float weights [N, K] stored as f32, f16 or bf16 (decoding a token
/// with an unquantized model): per column, the products summed in 64 f32 lanes (four
/// vectors, four chains of FMAs) over the row, added up once; threads take chunks of
/// columns. The generic schedule copied a panel of weight columns into a buffer and
/// read it back (~40% of the read bandwidth for f32 weights); here each weight byte is
/// read once, widened in registers.
FailureOr<bool> KernelBuilder::lowerFloatMatvec(linalg::GenericOp op) {
  if (!isTransposedProduct(op))
    return false;
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  int64_t rows = ranges[0], columns = ranges[1], depth = ranges[2];
  Value weights = op.getDpsInputOperand(1)->get();
  if (rows != 1 || depth % 16 != 0 || !isStoredFloat(weights))
    return false;
  int lanesPerColumn = depth % 64 == 0 ? 64 : 16;
  std::string prefix = kernel.name + "_fmv_" + std::to_string(nextFunc++);
  Var kv("k"), nv("n"), mv("m"), lv("l");
  FailureOr<Expr> x = read(op, op.getDpsInputOperand(0)->get(), {mv, lv});
  FailureOr<Expr> init = read(op, op.getDpsInitOperand(0)->get(), {mv, nv});
  if (failed(x) || failed(init))
    return failure();
  Halide::RDom overDepth(0, static_cast<int>(depth / lanesPerColumn), prefix + "_rk");
  Expr k = overDepth * lanesPerColumn + lv;
  // An f16 weight the compiler found finite is read as its value times 2^-112 (3
  // operations; the last of widenFiniteHalf's four, the multiply by 2^112, cost 1.4-1.8x
  // in the time of a product whose conversion was the limit), and the row takes the
  // scale instead: times 2^e, e = 112 unless the row's largest magnitude would then
  // overflow (|x| >= 2^14: e smaller, so that it stays below 2^126), the sums times
  // 2^(112 - e). Scaling by powers of two is exact, so each product is w * x scaled,
  // summed as before; only products below 2^-126 (with e = 112: |w x| < 2^-14 * 2^-112)
  // would round as f32 subnormals, and those are ~2^-100 of the largest terms.
  auto half = dyn_cast<BlockArgument>(storedSource(weights));
  bool prescaled = half && half.getOwner() == &dispatch.getBody().front() && isFiniteHalfWeight(half);
  FailureOr<Expr> w = prescaled ? FailureOr<Expr>(widenFiniteHalfUnscaled(
                                      kernel.inputs[half.getArgNumber()](k, nv)))
                                : read(op, weights, {nv, k});
  if (failed(w))
    return failure();
  Func xf(prefix + "_x"), lanes(prefix + "_acc"), rowSum(prefix + "_rowsum"), total(prefix + "_total");
  Func raw(prefix + "_xraw"), largest(prefix + "_max"), scale(prefix + "_scale");
  Expr unscale = 1.0f;
  if (!prescaled) {
    xf(lv, mv) = *x;
  } else {
    raw(lv, mv) = *x;
    Halide::RDom all(0, static_cast<int>(depth), prefix + "_ra");
    largest(mv) = Halide::maximum(Halide::abs(raw(all, mv)));
    // The biased exponent of the largest magnitude (255 for inf/NaN, which then stay
    // inf/NaN) and e = min(112, 252 - biased), as f32 powers of two built from bits.
    Expr biased = Halide::cast<int>(Halide::reinterpret<uint32_t>(largest(mv)) >> 23) & 255;
    Expr e = Halide::min(112, 252 - biased);
    auto powerOfTwo = [](const Expr &p) {
      return Halide::reinterpret<float>(Halide::cast<uint32_t>(p + 127) << 23);
    };
    scale(mv) = {powerOfTwo(e), powerOfTwo(112 - e)};
    xf(lv, mv) = raw(lv, mv) * scale(mv)[0];
    unscale = scale(mv)[1];
  }
  lanes(lv, nv, mv) = 0.0f;
  lanes(lv, nv, mv) += *w * xf(k, mv);
  Halide::RDom overLanes(0, lanesPerColumn, prefix + "_rl");
  rowSum(nv, mv) = 0.0f;
  rowSum(nv, mv) += lanes(overLanes, nv, mv);
  total(nv, mv) = *init + rowSum(nv, mv) * unscale;
  tensors[op->getResult(0)] = total;
  Stage stage{total, {rows, columns}, /*isOutput=*/false, "", depth, 0};
  auto place = [=](const KernelSchedule &schedule, ProductRoot root) mutable {
    // The row once, before the columns: it may be computed here (a fused SwiGLU gate),
    // which inlined would run once per column.
    xf.compute_root().vectorize(lv, 16, Halide::TailStrategy::GuardWithIf);
    if (prescaled) {
      raw.compute_root().vectorize(lv, 16, Halide::TailStrategy::GuardWithIf);
      largest.compute_root();
      scale.compute_root();
    }

    // A row longer than 4096 values (16 KiB in f32: an FFN's down projection) does not
    // stay in L1 beside the weight stream, and reading it again per column from L2
    // halved the read bandwidth (2048x7168 f16: 15 GB/s at 2 threads): 4 columns then
    // take each loaded vector of it (16 accumulators), ~1.3x faster. Shorter rows keep
    // one column per pass, which reads the weights in memory order (4 columns lost
    // ~30% on 7168x2048 there).
    constexpr int together = 4;
    bool longRow = depth > 4096 && columns % together == 0;
    placeColumnLanes(root, rowSum, lanes, overLanes, lv, prefix, columns, depth, 8,
                     schedule.parallel, longRow ? together : 1);
    if (longRow)
      lanes.update().reorder(lv, nv, overDepth).vectorize(lv).unroll(nv);
    else
      lanes.update().reorder(lv, overDepth).vectorize(lv);
  };
  placeProduct(stage, total, nv, mv, place);
  kernel.stages.push_back(stage);
  return true;
}

/// Several rows times float weights [N, K] stored as f32, f16 or bf16 (a prefill with
/// an unquantized model): dot products along the depth, as each weight row lies in
/// memory. For a group of `columnsPerGroup` columns, a panel of the depth is widened
/// into a small f32 buffer once (the weights are read and widened once per group,
/// not once per row) and every tile of `rowsPerTile` rows runs over it with one
/// accumulator vector per (column, row): per 16 values of the depth, a load of each
/// column's and each row's vector and columns x rows FMAs, the lanes added up once
/// per output. The generic schedule copied panels of weight columns (transposing
/// them) and ran at 43-48% of the FMA peak on AMD Zen 4 at 32 rows (bench/kernels.py
/// --types f16 bf16 f32 --rows 32); this, 63-68%.
FailureOr<bool> KernelBuilder::lowerFloatPanelProduct(linalg::GenericOp op) {
  if (!isTransposedProduct(op))
    return false;
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  int64_t rows = ranges[0], columns = ranges[1], depth = ranges[2];
  constexpr int columnsPerGroup = 4, lanes = 16;
  Value weights = op.getDpsInputOperand(1)->get();
  // From 64 rows on, the generic schedule's panel copies cost less than the lanes
  // added up per output here (equal at 128 rows on AMD Zen 4, ahead on a short depth).
  if (rows < 2 || rows >= 64 || depth % lanes != 0 || columns % columnsPerGroup != 0 ||
      !isStoredFloat(weights))
    return false;
  std::string prefix = kernel.name + "_fpp_" + std::to_string(nextFunc++);
  Var kv("k"), nv("n"), mv("m"), lv("l");
  FailureOr<Expr> x = read(op, op.getDpsInputOperand(0)->get(), {mv, kv});
  FailureOr<Expr> init = read(op, op.getDpsInitOperand(0)->get(), {mv, nv});
  FailureOr<Expr> w = read(op, weights, {nv, kv});
  if (failed(x) || failed(init) || failed(w))
    return failure();
  Func xf(prefix + "_x"), panel(prefix + "_w"), dot(prefix + "_acc"), rowSum(prefix + "_rowsum"),
      total(prefix + "_total");
  xf(kv, mv) = *x;
  panel(kv, nv) = *w;
  Halide::RDom overDepth(0, static_cast<int>(depth / lanes), prefix + "_rk");
  Expr k = overDepth * lanes + lv;
  dot(lv, nv, mv) = 0.0f;
  dot(lv, nv, mv) += xf(k, mv) * panel(k, nv);
  Halide::RDom overLanes(0, static_cast<int>(lanes), prefix + "_rl");
  rowSum(nv, mv) = 0.0f;
  rowSum(nv, mv) += dot(overLanes, nv, mv);
  total(nv, mv) = *init + rowSum(nv, mv);
  tensors[op->getResult(0)] = total;
  Stage stage{total, {rows, columns}, /*isOutput=*/false, "", depth, 0};
  auto place = [=](const KernelSchedule &schedule, ProductRoot root) mutable {
    // The panel: by default 512 values of the depth (8 KiB of f32 for 4 columns, in the
    // L1 cache beside the rows' activations it meets); knobs product_panel and
    // product_rows.
    int64_t panelDepth = productPanelDepth(schedule, depth, 512, lanes);
    int64_t rowsPerTile = schedule.productRows ? schedule.productRows : 4;
    // The activations once (they may be computed here: a fused norm or SwiGLU gate).
    xf.compute_root().vectorize(kv, lanes, Halide::TailStrategy::GuardWithIf);
    Var group(prefix + "_g"), column(prefix + "_c"), chunk(prefix + "_chunk"),
        inChunk(prefix + "_gi");
    int64_t groups = columns / columnsPerGroup;
    int64_t perChunk = std::max<int64_t>(1, (groups + 15) / 16);
    root.func.split(root.columns, group, column, static_cast<int>(columnsPerGroup))
        .split(group, chunk, inChunk, static_cast<int>(perChunk), Halide::TailStrategy::GuardWithIf)
        .reorder(column, root.rows, inChunk, chunk);
    if (schedule.parallel && rows * columns * depth >= 64 * 1024)
      root.func.parallel(chunk);
    dot.compute_at(root.func, inChunk).vectorize(lv);
    rowSum.compute_at(root.func, inChunk);
    rowSum.update().atomic().vectorize(overLanes);
    Var mo(prefix + "_mo"), mi(prefix + "_mi"), ni(prefix + "_ni");
    Halide::RVar ko(prefix + "_rko"), ki(prefix + "_rki");
    dot.update()
        .split(overDepth, ko, ki, static_cast<int>(panelDepth / lanes))
        .split(mv, mo, mi, static_cast<int>(rowsPerTile), Halide::TailStrategy::GuardWithIf)
        .split(nv, nv, ni, static_cast<int>(columnsPerGroup))
        .reorder(lv, ni, mi, ki, mo, nv, ko)
        .vectorize(lv)
        .unroll(ni)
        .unroll(mi);
    panel.compute_at(dot, ko).vectorize(kv, lanes);
  };
  placeProduct(stage, total, nv, mv, place);
  kernel.stages.push_back(stage);
  return true;
}

FailureOr<bool> KernelBuilder::lowerBlockMatvec(linalg::GenericOp op, bool integer) {
  PackedProduct product = matchPackedProduct(op);
  if (!product.weights || product.rows != 1 ||
      !hasIntegerBlocks(product.weights->quant.getScheme()))
    return false;
  const PackedTensor &weights = *product.weights;
  Value activations = product.activations;
  int64_t rows = product.rows, columns = product.columns, depth = product.depth;

  std::string prefix = kernel.name + (integer ? "_i8_" : "_mv_") + std::to_string(nextFunc++);
  Var kv("k"), bv("b"), nv("n"), mv("m"), lv("l");
  FailureOr<Expr> x = read(op, activations, {mv, kv});
  FailureOr<Expr> init = read(op, op.getDpsInitOperand(0)->get(), {mv, nv});
  if (failed(x) || failed(init))
    return failure();
  Halide::Type i32 = Halide::Int(32), fl = Halide::Float(32);
  auto func = [&](const char *name) { return Func(prefix + "_" + name); };

  // The activation row in blocks: quantized with `integer` (kept as int16 without
  // 4-way byte dot products: they fit in 8 bits, and the 2-way product (pmaddwd) then
  // reads them as they are, with no widening per block), else f32.
  bool dot4 = integer && options.integerDot4;
  Halide::Type acc = integer ? i32 : fl;
  Func xf = func("x"), scale = func("dx");
  xf(kv, mv) = *x;
  ActivationBlocks row = activationBlocks(
      xf, !integer ? fl : dot4 ? Halide::Int(8) : Halide::Int(16), prefix);
  Func largest = row.largest, quantized = row.values, sum = row.sum;
  scale(bv, mv) = largest(bv, mv) / 127.0f;
  Halide::RDom inHalf(0, 16, prefix + "_h");
  Var hv("h");
  Func halfSum = func("sxh"); // the sums of values 0-15 and 16-31
  halfSum(hv, bv, mv) = 0;
  halfSum(hv, bv, mv) += Halide::cast(i32, quantized(bv * 32 + hv * 16 + inHalf, mv));

  // Per output column n and block b: lanes of dot products of the weights with the
  // activations. Integer: 8 lanes of 4 terms (one vpdpbusd) where the target has 4-way
  // byte dot products, of the unsigned bytes u, the lanes a scale covers starting from
  // -offset * (the sum of its values), so that each adds up to its part of
  // sum((u - offset) * q); else 16 lanes of 2 terms on int16 (one pmaddwd) of the signed
  // bytes u - offset (narrowing to 8 lanes cost a permute, a truncation and an add per
  // block, ~40% of the kernel on AVX-512 without VNNI). Float: 32 lanes of one term, the
  // signed byte converted. Then each is scaled by its weight scale (and the activation
  // block's), and lane 0 takes off the block's minimum times its sum. Scaling per block
  // rather than per value saves a multiply per vector of the f32 path (Q5_0 products
  // 1.5x faster on AMD Zen 4 than decoding every value to f32).
  int lanesPerBlock = !integer ? 32 : dot4 ? 8 : 16, termsPerLane = 32 / lanesPerBlock;
  Expr first = lv * termsPerLane; // the lane's first value in its block
  std::vector<Expr> weightRow{nv};
  Halide::RDom terms(0, termsPerLane, prefix + "_q");
  IntegerBlock reading = integerBlock(weights, weightRow, bv, first + terms, first / 4);
  // The scales once per block (per half where they differ), not once per lane.
  IntegerBlock perBlock = integerBlock(weights, weightRow, bv, Expr(0), hv * 4);
  Func dot = func("idot");
  Expr weight = Halide::cast(i32, reading.u), start = Halide::cast(acc, 0);
  if (!integer)
    weight = Halide::cast(fl, Halide::cast(Halide::Int(8), reading.u - Halide::cast(Halide::UInt(8), reading.offset)));
  else if (!dot4)
    // int16 lanes take the signed weight u - offset (u8 arithmetic wraps, and the same
    // bits read as int8 are the signed value): one byte subtraction per block instead of
    // a correction of every lane's sum.
    weight = Halide::cast(i32, Halide::cast(Halide::Int(8), reading.u - Halide::cast(Halide::UInt(8), reading.offset)));
  else if (reading.offset)
    start = reading.halves
                ? Halide::select(first % 16 == 0, -reading.offset * halfSum(first / 16, bv, mv), 0)
                : Halide::select(lv == 0, -reading.offset * sum(bv, mv), 0);
  dot(lv, bv, nv, mv) = start;
  dot(lv, bv, nv, mv) += weight * Halide::cast(acc, quantized(bv * 32 + first + terms, mv));
  int64_t blocks = depth / 32;
  Halide::RDom overBlocks(0, static_cast<int>(blocks), prefix + "_rb");
  Func wscale = func("dw");
  wscale(hv, bv, nv) = perBlock.scale;
  Expr laneScale = reading.halves ? wscale(first / 16, overBlocks, nv) : wscale(0, overBlocks, nv);
  Func lanes = func("acc");
  lanes(lv, nv, mv) = 0.0f;
  // Float activations have no scale of their own.
  Expr activationScale = integer ? Expr(scale(overBlocks, mv)) : Expr(1.0f);
  Expr term = Halide::cast(fl, dot(lv, overBlocks, nv, mv)) * (laneScale * activationScale);
  Func wmin = func("dmin");
  if (perBlock.minimum.defined()) {
    wmin(bv, nv) = perBlock.minimum;
    term -= Halide::select(lv == 0, wmin(overBlocks, nv) * activationScale *
                                        Halide::cast(fl, sum(overBlocks, mv)),
                           0.0f);
  }
  lanes(lv, nv, mv) += term;
  Halide::RDom overLanes(0, lanesPerBlock, prefix + "_rl");
  Func rowSum = func("rowsum"), total = func("total");
  rowSum(nv, mv) = 0.0f;
  rowSum(nv, mv) += lanes(overLanes, nv, mv);
  total(nv, mv) = *init + rowSum(nv, mv);
  tensors[op->getResult(0)] = total;

  bool unrollSubBlocks = weights.quant.getBlockElements() == 256 && blocks % 8 == 0;
  std::vector<int64_t> shape{rows, columns};
  Stage stage{total, shape, /*isOutput=*/false, "", depth, 0};
  auto place = [=](const KernelSchedule &schedule, ProductRoot root) mutable {
    for (Func f : {largest, scale, sum, halfSum})
      f.compute_root();
    if (integer)
      quantized.compute_root().vectorize(kv, 16, Halide::TailStrategy::GuardWithIf);
    placeColumnLanes(root, rowSum, lanes, overLanes, lv, prefix, columns, depth, 16,
                     schedule.parallel);
    Halide::RVar superBlock(prefix + "_rbo"), subBlock(prefix + "_rbi");
    Halide::Stage blockLoop = lanes.update().reorder(lv, overBlocks).vectorize(lv);
    Halide::RVar at = overBlocks;
    if (unrollSubBlocks) {
      // K-quants: the 8 sub-blocks of a 256-value block unrolled, so that each one's
      // scale bytes sit at constant offsets (as in the f32 path).
      blockLoop.split(overBlocks, superBlock, subBlock, 8).unroll(subBlock);
      at = subBlock;
    }
    dot.compute_at(lanes, at).vectorize(lv);
    wscale.compute_at(lanes, at);
    if (wmin.defined())
      wmin.compute_at(lanes, at);
    dot.update().reorder(terms, lv).atomic().vectorize(terms).vectorize(lv);
  };
  placeProduct(stage, total, nv, mv, place);
  kernel.stages.push_back(stage);
  return true;
}

/// A product with q4_0x16 weights takes 16 output columns per vector, so that each
/// vector of the weights' bytes (the same values of 16 rows) is decoded once and no
/// column's lanes are ever added up. With int8 activations and one row: per block, a
/// pair of values per lane, 2-term dot products of the signed nibbles with a broadcast
/// pair of activations (pmaddwd: 16 columns x 2 values per instruction), one scale per
/// column and block. Else (f32, any rows): each block's 32 values of 16 columns are
/// decoded with their scales into a small buffer once per tile of activation rows,
/// then multiplied into the tile's rows (16 columns x tileRows accumulators).
FailureOr<bool> KernelBuilder::lowerInterleavedProduct(linalg::GenericOp op, bool integer) {
  PackedProduct product = matchPackedProduct(op);
  if (!product.weights)
    return false;
  QuantScheme scheme = product.weights->quant.getScheme();
  if (scheme != QuantScheme::q4_0x16 && scheme != QuantScheme::q8_0x16 &&
      scheme != QuantScheme::q5_0x16 && scheme != QuantScheme::q4_kx16 &&
      scheme != QuantScheme::q6_kx16)
    return false;
  // Per group of 16 rows and block: 16 slices of 32 bytes (q8_0x16) or 8 slices whose
  // low and high nibbles are two (q4_0x16; q5_0x16 then has a word of fifth bits per
  // slice and half), then the 16 scales.
  bool nibbles = scheme != QuantScheme::q8_0x16, fifthBits = scheme == QuantScheme::q5_0x16;
  // q4_kx16: blocks of 32 are the sub-blocks of 256-value blocks, each with a 6-bit
  // scale and min (value = d * scale * nibble - dmin * min), laid out as q4_0x16's
  // blocks after the 256-value block's 16 d and 16 dmin.
  // q6_kx16 likewise after the 16 d, with two int8 scales per sub-block (one per 16
  // values) and the values' high two bits beside the nibbles: its values are read
  // signed (6 bits - 32), and each half of a sub-block is scaled on its own.
  bool q6 = scheme == QuantScheme::q6_kx16;
  bool kQuant = scheme == QuantScheme::q4_kx16 || q6;
  int superBytes = q6 ? 3360 : 2368, subStart = q6 ? 32 : 64;
  int blockBytes = q6 ? 416 : kQuant ? 288 : fifthBits ? 352 : nibbles ? 288 : 544;
  // q4_0x16 and q5_0x16 keep their fields in the order the kernel reads them: scales,
  // (fifth bits,) nibbles. With the scales last, the q5_0x16 product ran at a third of
  // the bandwidth from DRAM while as fast as q4_0x16 from the cache; q4_0x16 gained 5-10%.
  int scalesAt = nibbles ? 0 : blockBytes - 32,
      valuesAt = q6 ? 160 : fifthBits ? 96 : nibbles ? 32 : 0;
  int offset = kQuant ? 0 : fifthBits ? 16 : nibbles ? 8 : 0;
  // Block b's first byte: q4_kx16's sub-block b % 8 of block b / 8.
  auto blockAt = [&](const Expr &b) {
    return kQuant ? (b / 8) * superBytes + subStart + blockBytes * (b % 8) : b * blockBytes;
  };
  const PackedTensor &weights = *product.weights;
  int64_t rows = product.rows, columns = product.columns, depth = product.depth;
  int64_t groups = columns / 16, blocks = depth / 32;
  integer = integer && rows == 1;
  std::string prefix = kernel.name + (integer ? "_x16i8_" : "_x16_") + std::to_string(nextFunc++);
  Var kv("k"), bv("b"), cv("c"), gv("g"), mv("m"), nv("n");
  FailureOr<Expr> x = read(op, product.activations, {mv, kv});
  FailureOr<Expr> init = read(op, op.getDpsInitOperand(0)->get(), {mv, nv});
  if (failed(x) || failed(init))
    return failure();
  Halide::Type i16 = Halide::Int(16), i32 = Halide::Int(32), fl = Halide::Float(32),
               u8 = Halide::UInt(8);
  auto func = [&](const char *name) { return Func(prefix + "_" + name); };
  std::vector<Expr> group{gv};
  // Value 4 quad + 2 high + odd of block b, row c of the group, as int16 (unsigned
  // nibbles standing for value + 8 (q5_0x16: with the fifth bit, + 16), or signed
  // bytes; kiln/quant_formats.h): q4_0x16's byte b * 288 + 32 + quad * 32 + 2c + odd, its high
  // nibble when `high`; q8_0x16's byte b * 544 + (2 quad + high) * 32 + 2c + odd;
  // q5_0x16's nibbles from b * 352 + 96 on, the fifth bit bit v % 8 of byte b * 352 + 32
  // + 32 (v / 8) + 2c + odd, v = 2 quad + high (a vector of 32 values: one shift and
  // one and of a vector of bytes).
  auto valueAt = [&](const Expr &b, const Expr &quad, const Expr &high, const Expr &odd) {
    if (!nibbles)
      return Halide::cast(i16, Halide::cast(Halide::Int(8), rawByteAt(weights, group,
                                                                       b * 544 + (2 * quad + high) * 32 + 2 * cv + odd)));
    Expr byte = rawByteAt(weights, group, blockAt(b) + valuesAt + quad * 32 + 2 * cv + odd);
    Expr nibble = Halide::select(high == 0, byte & Halide::cast(u8, 15), byte >> Halide::cast(u8, 4));
    if (fifthBits) {
      Expr v = 2 * quad + high;
      Expr bits = rawByteAt(weights, group, b * blockBytes + 32 + 32 * (v / 8) + 2 * cv + odd);
      nibble = nibble | ((bits >> Halide::cast(u8, v % 8)) & Halide::cast(u8, 1)) << Halide::cast(u8, 4);
    }
    if (q6) {
      Expr v = 2 * quad + high;
      Expr bits = rawByteAt(weights, group, blockAt(b) + 32 + 32 * (v / 4) + 2 * cv + odd);
      nibble = nibble | ((bits >> Halide::cast(u8, 2 * (v % 4))) & Halide::cast(u8, 3)) << Halide::cast(u8, 4);
      return Halide::cast(i16, nibble) - Halide::cast(i16, 32);
    }
    return Halide::cast(i16, nibble);
  };
  Func xf = func("x"), wscale = func("dw"), acc = func("acc"), total = func("total");
  xf(kv, mv) = *x;
  // The 16 scales as one vector: Halide 14 scalarizes a vector of the F16C intrinsic
  // halfAt uses (16 calls), while its own conversion stays a dozen vector instructions.
  PackedTensor emulatedHalf = weights;
  emulatedHalf.hardwareHalf = false;
  // q4_kx16: per block of 256 the 16 d and dmin (dk), per sub-block the 16 scales and
  // mins (wmin: dmin * min, what each value of the sub-block has taken off).
  // q6_kx16: the scales of the two halves of each sub-block (wscale6).
  Func dk = func("dk"), wmin = func("dmin"), wscale6 = func("dw6");
  Var sv("s"), jv("j");
  if (q6) {
    dk(cv, sv, bv, gv) = halfAt(emulatedHalf, group, bv * superBytes + 2 * cv);
    wscale6(cv, jv, bv, gv) =
        dk(cv, 0, bv / 8, gv) *
        Halide::cast(fl, Halide::cast(Halide::Int(8), rawByteAt(weights, group, blockAt(bv) + 16 * jv + cv)));
  } else if (kQuant) {
    dk(cv, sv, bv, gv) = halfAt(emulatedHalf, group, bv * 2368 + 32 * sv + 2 * cv);
    auto sixBits = [&](const Expr &b, int at) {
      return Halide::cast(fl, rawByteAt(weights, group, blockAt(b) + at + cv));
    };
    wscale(cv, bv, gv) = dk(cv, 0, bv / 8, gv) * sixBits(bv, 0);
    wmin(cv, bv, gv) = dk(cv, 1, bv / 8, gv) * sixBits(bv, 16);
  } else {
    wscale(cv, bv, gv) = halfAt(emulatedHalf, group, bv * blockBytes + scalesAt + 2 * cv);
  }
  Halide::RDom overBlocks(0, static_cast<int>(blocks), prefix + "_rb");
  // The loop over blocks as the reductions below run it: q4_kx16's 8 sub-blocks
  // unrolled inside each block of 256, whose d and dmin are converted once.
  auto blockLoop = [=](Halide::Stage update, Func dot) mutable {
    if (!kQuant) {
      dot.compute_at(acc, overBlocks);
      wscale.compute_at(acc, overBlocks).vectorize(cv);
      return;
    }
    Halide::RVar superBlock(prefix + "_rbo"), subBlock(prefix + "_rbi");
    update.split(overBlocks, superBlock, subBlock, 8).unroll(subBlock);
    dk.compute_at(acc, superBlock).bound(sv, 0, q6 ? 1 : 2).vectorize(cv).unroll(sv);
    dot.compute_at(acc, subBlock);
    if (q6) {
      wscale6.compute_at(acc, subBlock).bound(jv, 0, 2).vectorize(cv).unroll(jv);
      return;
    }
    wscale.compute_at(acc, subBlock).vectorize(cv);
    wmin.compute_at(acc, subBlock).vectorize(cv);
  };
  std::function<void(const KernelSchedule &)> place;
  if (integer) {
    // The activation row as 8-bit blocks (ggml's quantize_row_q8_0), kept as int16.
    ActivationBlocks row = activationBlocks(xf, i16, prefix);
    Func dot = func("idot");
    // Over (odd, high, quad): value 4 quad + 2 high + odd; unsigned nibbles start each
    // block from -8 times the sum of its activations.
    // (q6_kx16: quads 0-3 and 4-7 apart, the halves of the sub-block its two scales
    // cover.)
    Halide::RDom r(0, 2, 0, 2, 0, q6 ? 4 : 8, prefix + "_r");
    Expr quad = q6 ? 4 * jv + r.z : Expr(r.z);
    dot(cv, jv, bv, gv) = q6 ? Expr(0) : -offset * row.sum(bv, 0);
    dot(cv, jv, bv, gv) += Halide::cast(i32, valueAt(bv, quad, r.y, r.x)) *
                           Halide::cast(i32, row.values(bv * 32 + 4 * quad + 2 * r.y + r.x, 0));
    Expr activationScale = row.largest(overBlocks, 0) / 127.0f;
    Expr term = Halide::cast(fl, dot(cv, 0, overBlocks, gv)) *
                ((q6 ? wscale6(cv, 0, overBlocks, gv) : wscale(cv, overBlocks, gv)) * activationScale);
    if (q6)
      term += Halide::cast(fl, dot(cv, 1, overBlocks, gv)) * (wscale6(cv, 1, overBlocks, gv) * activationScale);
    else if (kQuant)
      term -= wmin(cv, overBlocks, gv) * (activationScale * Halide::cast(fl, row.sum(overBlocks, 0)));
    acc(cv, mv, gv) = 0.0f;
    acc(cv, mv, gv) += term;
    place = [=](const KernelSchedule &) mutable {
      for (Func f : {row.largest, row.sum})
        f.compute_root();
      row.values.compute_root().vectorize(kv, 16, Halide::TailStrategy::GuardWithIf);
      Halide::Stage update = acc.update().reorder(cv, overBlocks, mv).vectorize(cv);
      blockLoop(update, dot);
      dot.bound(jv, 0, q6 ? 2 : 1).vectorize(cv).unroll(jv);
      dot.update().reorder(r.x, cv, r.y, r.z, jv).atomic().vectorize(r.x).vectorize(cv).unroll(r.y).unroll(r.z).unroll(jv);
    };
  } else if (rows == 1) {
    // One row: per block, the unsigned nibbles times the activations in 64 lanes (odd
    // value, column, high nibble: each vector of 32 bytes read once, four chains of
    // adds), summed over the lanes of a column and scaled once; -8 times the block's
    // activation sum taken off.
    Func sum = activationBlocks(xf, fl, prefix).sum, dot = func("dot");
    Var ev("e"), hv("h");
    Halide::RDom quads(0, q6 ? 4 : 8, prefix + "_q");
    Expr quad = q6 ? 4 * jv + quads : Expr(quads);
    dot(ev, cv, hv, jv, bv, gv) = 0.0f;
    dot(ev, cv, hv, jv, bv, gv) += Halide::cast(fl, valueAt(bv, quad, hv, ev)) *
                                   xf(bv * 32 + 4 * quad + 2 * hv + ev, 0);
    auto lanesOf = [&](int j) {
      return dot(0, cv, 0, j, overBlocks, gv) + dot(1, cv, 0, j, overBlocks, gv) +
             dot(0, cv, 1, j, overBlocks, gv) + dot(1, cv, 1, j, overBlocks, gv);
    };
    Expr lanes = lanesOf(0);
    acc(cv, mv, gv) = 0.0f;
    if (q6)
      acc(cv, mv, gv) += lanes * wscale6(cv, 0, overBlocks, gv) + lanesOf(1) * wscale6(cv, 1, overBlocks, gv);
    else if (kQuant)
      acc(cv, mv, gv) += lanes * wscale(cv, overBlocks, gv) - wmin(cv, overBlocks, gv) * sum(overBlocks, 0);
    else
      acc(cv, mv, gv) += (lanes - static_cast<float>(offset) * sum(overBlocks, 0)) *
                         wscale(cv, overBlocks, gv);
    place = [=](const KernelSchedule &) mutable {
      sum.compute_root();
      Halide::Stage update = acc.update().reorder(cv, overBlocks, mv).vectorize(cv);
      blockLoop(update, dot);
      dot.bound(ev, 0, 2).bound(hv, 0, 2).bound(jv, 0, q6 ? 2 : 1).vectorize(ev).vectorize(cv).unroll(hv).unroll(jv);
      dot.update().reorder(ev, cv, hv, quads, jv).vectorize(ev).vectorize(cv).unroll(hv).unroll(quads).unroll(jv);
    };
  } else {
    // The 16 columns' values with their scales, decoded into a buffer a panel of the
    // depth at a time, then multiplied into every tile of rows.
    Func decoded = func("w");
    Expr t = kv % 32;
    Expr value = Halide::cast(fl, valueAt(kv / 32, t / 4, (t % 4) / 2, t % 2) - offset);
    decoded(cv, kv, gv) = q6       ? wscale6(cv, t / 16, kv / 32, gv) * value
                          : kQuant ? wscale(cv, kv / 32, gv) * value - wmin(cv, kv / 32, gv)
                                   : wscale(cv, kv / 32, gv) * value;
    Halide::RDom inDepth(0, static_cast<int>(depth), prefix + "_rk");
    acc(cv, mv, gv) = 0.0f;
    acc(cv, mv, gv) += xf(inDepth, mv) * decoded(cv, inDepth, gv);
    // The decoded buffer holds a panel of 512 values of the depth (32 KiB; knob
    // product_panel), each panel decoded once and used by every tile of 8 rows (knob
    // product_rows) while it sits in the L1 cache (decoding it per tile cost twice the
    // multiplies: 58% of the FMA peak, now ~90%).
    place = [=](const KernelSchedule &schedule) mutable {
      int64_t tileRows = std::min<int64_t>(rows, schedule.productRows ? schedule.productRows : 8);
      int64_t panel = productPanelDepth(schedule, depth, 512, 32);
      Var mo(prefix + "_mo"), mi(prefix + "_mi");
      Halide::RVar rb(prefix + "_rkb"), rt(prefix + "_rkt");
      acc.update()
          .split(inDepth, rb, rt, static_cast<int>(panel))
          .split(mv, mo, mi, static_cast<int>(tileRows), Halide::TailStrategy::GuardWithIf)
          .reorder(cv, mi, rt, mo, rb)
          .vectorize(cv)
          .unroll(mi);
      decoded.compute_at(acc, rb).vectorize(cv).unroll(kv, 4);
      if (q6) {
        wscale6.compute_at(acc, rb).vectorize(cv);
        dk.compute_at(acc, rb).vectorize(cv);
      } else {
        wscale.compute_at(acc, rb).vectorize(cv);
      }
      if (kQuant && !q6) {
        wmin.compute_at(acc, rb).vectorize(cv);
        dk.compute_at(acc, rb).vectorize(cv);
      }
    };
  }
  total(nv, mv) = *init + acc(nv % 16, mv, nv / 16);
  tensors[op->getResult(0)] = total;
  std::vector<int64_t> shape{rows, columns};
  Stage stage{total, shape, /*isOutput=*/false, "", depth, 0};
  placeProduct(stage, total, nv, mv, [=](const KernelSchedule &schedule, ProductRoot root) mutable {
    Var go(prefix + "_go"), ci(prefix + "_ci"), chunk(prefix + "_chunk"), inChunk(prefix + "_gi");
    root.func.split(root.columns, go, ci, 16).vectorize(ci);
    int64_t perChunk = std::max<int64_t>(1, (groups + 15) / 16);
    root.func.split(go, chunk, inChunk, static_cast<int>(perChunk), Halide::TailStrategy::GuardWithIf)
        .reorder(ci, root.rows, inChunk, chunk);
    if (schedule.parallel && rows * columns * depth >= 64 * 1024)
      root.func.parallel(chunk);
    acc.compute_at(root.func, inChunk).vectorize(cv);
    place(schedule);
  });
  kernel.stages.push_back(stage);
  return true;
}

bool KernelBuilder::writtenInPlace(CacheWriteOp op) {
  auto cacheArg = dyn_cast<BlockArgument>(op.getCache());
  auto func = dispatch->getParentOfType<func::FuncOp>();
  if (!cacheArg || cacheArg.getOwner() != &dispatch.getBody().front() || !func)
    return false;
  auto stateArg = dyn_cast<BlockArgument>(dispatch->getOperand(cacheArg.getArgNumber()));
  if (!stateArg || stateArg.getOwner() != &func.getBody().front())
    return false;
  auto state = func.getArgAttrOfType<StringAttr>(stateArg.getArgNumber(), "kiln.state");
  if (!state)
    return false;
  auto ret = dyn_cast<func::ReturnOp>(func.getBody().front().getTerminator());
  for (auto [i, yielded] : llvm::enumerate(dispatch.getYield().getValues())) {
    if (yielded != op.getResult())
      continue;
    for (OpOperand &use : dispatch->getResult(i).getUses())
      if (use.getOwner() == ret.getOperation() &&
          func.getResultAttrOfType<StringAttr>(use.getOperandNumber(), "kiln.state") == state)
        return true;
  }
  return false;
}

LogicalResult KernelBuilder::lowerCacheWrite(CacheWriteOp op) {
  std::vector<int64_t> cacheShape = shapeOf(op.getCache()), rowShape = shapeOf(op.getRows());
  int64_t cacheRows = cacheShape.front(), count = rowShape.front();
  std::vector<Var> vars = makeVars(cacheShape.size(), "w"); // [t, ...]
  FailureOr<Expr> offset = read(op, op.getOffset(), {Expr(0)});
  FailureOr<Expr> old = read(op, op.getCache(), asExprs(vars));
  if (failed(offset) || failed(old))
    return failure();
  Func f = newFunc(op.getResult());
  Halide::Type type = *toHalideType(cast<RankedTensorType>(op.getType()).getElementType());
  std::vector<Var> args = reversed(ArrayRef<Var>(vars));
  // In place, the rows not written are the buffer's old contents: no pure step at all.
  bool inPlace = writtenInPlace(op);
  f(args) = inPlace ? Halide::undef(type) : *old;
  if (inPlace)
    kernel.context += "in-place;"; // per cache_write, in body order
  // One row on Metal (a decode step) is written without a reduction domain: Halide 14
  // fails on a one-point domain once the offset comes from a host stage
  // (narrow64BitInputs). A row outside the cache then writes back what is there.
  bool oneRow = options.narrow64BitInputs && count == 1;
  std::optional<Halide::RDom> domain;
  if (!oneRow)
    domain.emplace(0, static_cast<int>(count), "cw_row");
  Expr step = domain ? Expr(domain->x) : Expr(0);
  Expr row, valid;
  if (op.getRing()) {
    // Position p + r in row (p + r) mod T (Halide's % of a positive divisor is never
    // negative); positions below 0 are dropped.
    Expr first = Halide::clamp(*offset, -static_cast<int>(count), kMaxPosition);
    Expr position = Halide::cast(Halide::Int(32), first) + step;
    valid = position >= 0;
    row = position % static_cast<int>(cacheRows);
  } else {
    Expr first = Halide::cast(Halide::Int(32),
                              Halide::clamp(*offset, -1, static_cast<int>(cacheRows)));
    row = first + step;
    valid = row >= 0 && row < static_cast<int>(cacheRows);
  }
  std::vector<Expr> rowAt{step}, cacheAt{Halide::clamp(row, 0, static_cast<int>(cacheRows - 1))};
  rowAt.insert(rowAt.end(), vars.begin() + 1, vars.end());
  cacheAt.insert(cacheAt.end(), vars.begin() + 1, vars.end());
  FailureOr<Expr> fresh = read(op, op.getRows(), rowAt);
  if (failed(fresh))
    return failure();
  std::vector<Expr> at(cacheAt.rbegin(), cacheAt.rend());
  if (domain) {
    domain->where(valid);
    f(at) = Halide::cast(type, *fresh);
  } else {
    f(at) = Halide::select(valid, Halide::cast(type, *fresh), f(at));
    kernel.context += "one-row write;";
  }
  tensors[op.getResult()] = f;
  // A few rows at a run-time offset: each row's elements in vectors, one thread.
  int64_t width = cacheShape.back();
  selfPlacedOutputs[f.name()] = [f, width](const KernelSchedule &schedule) mutable {
    int vector = static_cast<int>(schedule.vectorWidth);
    if (vector > 1 && width >= vector)
      f.update(0).vectorize(f.args()[0], vector, Halide::TailStrategy::GuardWithIf);
  };
  return success();
}

FailureOr<Expr> KernelBuilder::stepsOf(Operation *op, Value length, int64_t rows) {
  if (!length)
    return Expr(static_cast<int>(rows));
  FailureOr<Expr> n = read(op, length, {Expr(0)});
  if (failed(n))
    return failure();
  return Halide::cast(Halide::Int(32), Halide::clamp(*n, 0, static_cast<int>(rows)));
}

void KernelBuilder::rootStage(const Func &f, std::vector<int64_t> shape,
                              std::function<void(const KernelSchedule &)> place) {
  kernel.stages.push_back({f, std::move(shape), /*isOutput=*/false, "", 1});
  kernel.stages.back().placeItself = std::move(place);
}

void KernelBuilder::rowOutputStage(Func y, Var inner, Var t, std::vector<int64_t> shape) {
  int64_t rows = shape.front(), width = shape.back();
  rootStage(y, std::move(shape), [y, inner, t, width, rows](const KernelSchedule &s) mutable {
    y.compute_root();
    int vector = static_cast<int>(s.vectorWidth);
    if (vector > 1 && width >= vector) {
      y.vectorize(inner, vector, Halide::TailStrategy::GuardWithIf);
      y.update(0).vectorize(inner, vector, Halide::TailStrategy::GuardWithIf);
    }
    if (s.parallel && rows > 1)
      y.update(0).parallel(t);
  });
}

LogicalResult KernelBuilder::lowerCausalConv1d(CausalConv1dOp op) {
  std::vector<int64_t> shape = shapeOf(op.getInput()); // [L, C]
  int64_t rows = shape[0], channels = shape[1], taps = shapeOf(op.getWeight())[1];
  int history = static_cast<int>(taps - 1);
  Halide::Type f32 = Halide::Float(32);
  Var c("cv_c"), t("cv_t"), i("cv_i");
  // The old window, copied before any output is written: the new window is an output
  // that may be the same bytes.
  FailureOr<Expr> oldRow = read(op, op.getWindow(), {Expr(i), Expr(c)});
  FailureOr<Expr> steps = stepsOf(op, op.getLength(), rows);
  if (failed(oldRow) || failed(steps))
    return failure();
  Func past(kernel.name + "_past" + std::to_string(nextFunc++));
  past(c, i) = Halide::cast(f32, *oldRow);
  int vectorChannels = static_cast<int>(channels);
  rootStage(past, {taps - 1, channels}, [past, vectorChannels, c](const KernelSchedule &s) mutable {
    past.compute_root();
    if (s.vectorWidth > 1 && vectorChannels >= s.vectorWidth)
      past.vectorize(c, static_cast<int>(s.vectorWidth), Halide::TailStrategy::GuardWithIf);
  });
  // Row r of concat(window, input).
  auto row = [&](Expr r) -> FailureOr<Expr> {
    FailureOr<Expr> fresh =
        read(op, op.getInput(), {Halide::clamp(r - history, 0, static_cast<int>(rows - 1)), c});
    if (failed(fresh))
      return failure();
    return Halide::select(r < history, past(c, Halide::clamp(r, 0, history - 1)),
                          Halide::cast(f32, *fresh));
  };
  Expr sum = Halide::cast(f32, 0);
  for (int k = 0; k < taps; ++k) {
    FailureOr<Expr> w = read(op, op.getWeight(), {Expr(c), Expr(k)});
    FailureOr<Expr> x = row(t + k);
    if (failed(w) || failed(x))
      return failure();
    sum = sum + Halide::cast(f32, *w) * *x;
  }
  define(op.getResult(), {t, c}, sum);
  // The new window: the `history` rows before row `steps` of the input.
  FailureOr<Expr> kept = row(*steps + i);
  if (failed(kept))
    return failure();
  Func window(kernel.name + "_window" + std::to_string(nextFunc++));
  Halide::Type type = *toHalideType(cast<RankedTensorType>(op.getNewWindow().getType()).getElementType());
  window(c, i) = Halide::cast(type, *kept);
  rootStage(window, {taps - 1, channels}, [window, vectorChannels, c](const KernelSchedule &s) mutable {
    window.compute_root();
    if (s.vectorWidth > 1 && vectorChannels >= s.vectorWidth)
      window.vectorize(c, static_cast<int>(s.vectorWidth), Halide::TailStrategy::GuardWithIf);
  });
  tensors[op.getNewWindow()] = window;
  return success();
}

LogicalResult KernelBuilder::lowerSelectiveScan(SelectiveScanOp op) {
  std::vector<int64_t> shape = shapeOf(op.getInput()); // [L, D]
  int64_t rows = shape[0], channels = shape[1], states = shapeOf(op.getA())[1];
  Halide::Type f32 = Halide::Float(32);
  Var d("ss_d"), n("ss_n"), t("ss_t");
  Halide::RDom r(1, static_cast<int>(rows), "ss_r");
  Expr prev = r.x - 1;
  FailureOr<Expr> h0 = read(op, op.getState(), {Expr(d), Expr(n)});
  FailureOr<Expr> delta = read(op, op.getDelta(), {prev, Expr(d)});
  FailureOr<Expr> x = read(op, op.getInput(), {prev, Expr(d)});
  FailureOr<Expr> a = read(op, op.getA(), {Expr(d), Expr(n)});
  FailureOr<Expr> b = read(op, op.getB(), {prev, Expr(n)});
  FailureOr<Expr> steps = stepsOf(op, op.getLength(), rows);
  if (failed(h0) || failed(delta) || failed(x) || failed(a) || failed(b) || failed(steps))
    return failure();
  // h(n, d, t): the state after t rows, t = 0 .. L, the state index innermost as the
  // state tensor [D, N] lies in memory (N = 16: one AVX-512 vector). Every step is kept:
  // the outputs read all of them, and the state is read (step 0) before any output is
  // written. With channels innermost instead, the state's read and write and A's reads
  // were gathers with a stride of N: a one-row decode step of a Mamba-1.4B-shaped model
  // took 379 us per layer, a quarter of its decode.
  Func h(kernel.name + "_scan" + std::to_string(nextFunc++));
  h(n, d, t) = Halide::undef(f32);
  h(n, d, 0) = Halide::cast(f32, *h0);
  Expr dt = Halide::cast(f32, *delta);
  h(n, d, r.x) = Halide::exp(dt * Halide::cast(f32, *a)) * h(n, d, prev) +
                 Halide::cast(f32, *b) * (Halide::cast(f32, *x) * dt);
  Halide::RVar step = r.x;
  int64_t chunk = std::max<int64_t>(1, (channels + 15) / 16);
  rootStage(h, {rows + 1, channels, states}, [h, d, n, step, channels, states, chunk](const KernelSchedule &s) mutable {
    h.compute_root();
    int vector = static_cast<int>(s.vectorWidth);
    bool vectorize = vector > 1 && states >= vector;
    Var dc("ss_dc"), di("ss_di");
    if (vectorize)
      h.update(0).vectorize(n, vector, Halide::TailStrategy::GuardWithIf);
    // Per channel, the steps in order, a vector of state indices at a time; threads
    // take chunks of channels.
    Halide::Stage scan = h.update(1);
    scan.reorder(n, step, d);
    if (vectorize)
      scan.vectorize(n, vector, Halide::TailStrategy::GuardWithIf);
    if (s.parallel && channels > 1) {
      scan.split(d, dc, di, static_cast<int>(chunk), Halide::TailStrategy::GuardWithIf).parallel(dc);
      h.update(0).split(d, dc, di, static_cast<int>(chunk), Halide::TailStrategy::GuardWithIf).parallel(dc);
    }
  });
  // result[t, d] = sum_n h[d, n] after row t, times c[t, n]: per (row, channel) a
  // vector of the state indices, added up across its lanes.
  Halide::RDom k(0, static_cast<int>(states), "ss_k");
  FailureOr<Expr> c = read(op, op.getC(), {Expr(t), Expr(k.x)});
  if (failed(c))
    return failure();
  Func y(kernel.name + "_y" + std::to_string(nextFunc++));
  y(d, t) = Halide::cast(f32, 0);
  y(d, t) += h(k.x, d, t + 1) * Halide::cast(f32, *c);
  Halide::RVar kr = k.x;
  rootStage(y, {rows, channels}, [y, d, t, kr, rows, states](const KernelSchedule &s) mutable {
    y.compute_root();
    int vector = static_cast<int>(s.vectorWidth);
    if (vector > 1 && states >= vector && states % vector == 0)
      y.update(0).atomic().vectorize(kr, vector);
    if (s.parallel && rows > 1)
      y.update(0).parallel(t);
  });
  tensors[op.getResult()] = y;
  define(op.getNewState(), {d, n}, h(n, d, *steps));
  return success();
}

LogicalResult KernelBuilder::lowerWkv(WkvOp op) {
  std::vector<int64_t> shape = shapeOf(op.getReceptance()); // [L, H, S]
  int64_t rows = shape[0], heads = shape[1], size = shape[2];
  Halide::Type f32 = Halide::Float(32);
  Var j("wkv_j"), i("wkv_i"), h("wkv_h"), t("wkv_t");
  Halide::RDom r(1, static_cast<int>(rows), "wkv_r");
  Expr prev = r.x - 1;
  auto at = [&](Value tensor, std::vector<Expr> index) -> FailureOr<Expr> {
    FailureOr<Expr> e = read(op, tensor, index);
    if (failed(e))
      return failure();
    return Halide::cast(f32, *e);
  };
  FailureOr<Expr> s0 = at(op.getState(), {h, i, j});
  FailureOr<Expr> k = at(op.getKey(), {prev, h, i});
  FailureOr<Expr> v = at(op.getValue(), {prev, h, j});
  FailureOr<Expr> w = at(op.getDecay(), {prev, h, i});
  FailureOr<Expr> steps = stepsOf(op, op.getLength(), rows);
  if (failed(s0) || failed(k) || failed(v) || failed(w) || failed(steps))
    return failure();
  // s(j, i, h, t): the state before row t (t = 0 .. L), value index innermost (the
  // vectors). Every step of a head is kept (129 x 64 x 64 f32 = 2 MiB for 128 rows),
  // computed per head inside the output's loop over heads, which reads it while it is
  // still in the cache; the old state is read (step 0) before the head's new state is
  // written (the same buffer when the state is updated in place). Kept for all heads at
  // once (67 MB for a 128-token prefill, written to memory and read back) the scan took
  // 11.7-12.5 ms per layer of an RWKV-6-1.6B-shaped model at 2 threads; per head,
  // 3.8-5.4 ms. (Per key row, each scan's history 33 KiB but the scan run twice, once
  // more for the new state: 6.8-9.3 ms.)
  Func s(kernel.name + "_wkv" + std::to_string(nextFunc++));
  s(j, i, h, t) = Halide::undef(f32);
  s(j, i, h, 0) = *s0;
  s(j, i, h, r.x) = s(j, i, h, prev) * *w + *k * *v;
  Halide::RVar step = r.x;
  // result[t, h, j] = sum_i r[t, h, i] * (u[h, i] k[t, h, i] v[t, h, j] + s[h, i, j] before t).
  Halide::RDom ri(0, static_cast<int>(size), "wkv_ri");
  FailureOr<Expr> rr = at(op.getReceptance(), {t, h, ri.x});
  FailureOr<Expr> u = at(op.getBonus(), {h, ri.x});
  FailureOr<Expr> kt = at(op.getKey(), {t, h, ri.x});
  FailureOr<Expr> vt = at(op.getValue(), {t, h, j});
  if (failed(rr) || failed(u) || failed(kt) || failed(vt))
    return failure();
  Func y(kernel.name + "_wkvy" + std::to_string(nextFunc++));
  y(j, h, t) = Halide::cast(f32, 0);
  y(j, h, t) += *rr * (*u * *kt * *vt + s(j, ri.x, h, t));
  tensors[op.getResult()] = y;
  define(op.getNewState(), {h, i, j}, s(j, i, h, *steps));
  Func next = tensors[op.getNewState()];
  Halide::RVar key = ri.x;
  bool threads = heads > 1;
  // At root (every head's steps kept) unless the new state is an output of the kernel,
  // whose placement (below; outputs are placed after the other stages) moves it into
  // the loop over heads.
  rootStage(s, {rows + 1, heads, size, size}, [s, j, i, h, step, size](const KernelSchedule &sc) mutable {
    s.compute_root();
    int vector = static_cast<int>(sc.vectorWidth);
    bool vectorize = vector > 1 && size >= vector;
    if (vectorize)
      s.update(0).vectorize(j, vector, Halide::TailStrategy::GuardWithIf);
    Halide::Stage scan = s.update(1);
    scan.reorder(j, i, step, h);
    if (vectorize)
      scan.vectorize(j, vector, Halide::TailStrategy::GuardWithIf);
  });
  // The output per head (the threads' tasks), each row's sum over the key index with
  // the vectors of values innermost.
  rootStage(y, {rows, heads, size}, [y, j, h, t, key, size, threads](const KernelSchedule &sc) mutable {
    y.compute_root();
    int vector = static_cast<int>(sc.vectorWidth);
    Var jo("wkv_jo"), ji("wkv_ji");
    if (vector > 1 && size >= vector) {
      y.vectorize(j, vector, Halide::TailStrategy::GuardWithIf);
      y.update(0)
          .split(j, jo, ji, vector, Halide::TailStrategy::GuardWithIf)
          .vectorize(ji)
          .reorder(ji, key, jo, t, h);
    } else {
      y.update(0).reorder(j, key, t, h);
    }
    if (sc.parallel && threads)
      y.update(0).parallel(h);
  });
  selfPlacedOutputs[next.name()] = [next, s, y, h, j, size, threads](const KernelSchedule &sc) mutable {
    s.compute_at(y, h);
    int vector = static_cast<int>(sc.vectorWidth);
    if (vector > 1 && size >= vector)
      next.vectorize(j, vector, Halide::TailStrategy::GuardWithIf);
    if (sc.parallel && threads)
      next.parallel(h);
    next.compute_with(y.update(0), h);
  };
  return success();
}

LogicalResult KernelBuilder::lowerWkv7(Wkv7Op op) {
  std::vector<int64_t> shape = shapeOf(op.getReceptance()); // [L, H, S]
  int64_t rows = shape[0], heads = shape[1], size = shape[2];
  Halide::Type f32 = Halide::Float(32);
  Var j("wkv7_j"), i("wkv7_i"), h("wkv7_h"), t("wkv7_t");
  // The update runs over (key index, step), the key index innermost: a step's new row
  // reads every key index of the previous step's row (sa below), so the key index is a
  // reduction variable, not a pure one (Halide requires a Func's recursive references to
  // keep its pure variables in place).
  Halide::RDom r(0, static_cast<int>(size), 1, static_cast<int>(rows), "wkv7_r");
  Expr key = r.x, prev = r.y - 1;
  auto at = [&](Value tensor, std::vector<Expr> index) -> FailureOr<Expr> {
    FailureOr<Expr> e = read(op, tensor, index);
    if (failed(e))
      return failure();
    return Halide::cast(f32, *e);
  };
  FailureOr<Expr> s0 = at(op.getState(), {h, i, j});
  FailureOr<Expr> w = at(op.getDecay(), {prev, h, key});
  FailureOr<Expr> k = at(op.getKey(), {prev, h, key});
  FailureOr<Expr> v = at(op.getValue(), {prev, h, i});
  FailureOr<Expr> b = at(op.getB(), {prev, h, key});
  FailureOr<Expr> steps = stepsOf(op, op.getLength(), rows);
  if (failed(s0) || failed(w) || failed(k) || failed(v) || failed(b) || failed(steps))
    return failure();
  // s(j, i, h, t): the state after t rows. Every step is kept and the old state read
  // (step 0) before any output is written.
  Func s(kernel.name + "_wkv7" + std::to_string(nextFunc++));
  s(j, i, h, t) = Halide::undef(f32);
  s(j, i, h, 0) = *s0;
  // sa = a · (row i of the previous state), written out over the head size.
  Expr sa = Halide::cast(f32, 0);
  for (int64_t jj = 0; jj < size; ++jj) {
    FailureOr<Expr> a = at(op.getA(), {prev, h, Expr(static_cast<int>(jj))});
    if (failed(a))
      return failure();
    sa = sa + *a * s(static_cast<int>(jj), i, h, prev);
  }
  s(key, i, h, r.y) = s(key, i, h, prev) * *w + *v * *k + sa * *b;
  rootStage(s, {rows + 1, heads, size, size}, [s, j, h, size, heads](const KernelSchedule &sc) mutable {
    s.compute_root();
    int vector = static_cast<int>(sc.vectorWidth);
    if (vector > 1 && size >= vector)
      s.update(0).vectorize(j, vector, Halide::TailStrategy::GuardWithIf);
    if (sc.parallel && heads > 1)
      s.update(1).parallel(h);
  });
  // result[t, h, i] = sum_j s[h, i, j] after row t, times r[t, h, j].
  Halide::RDom rj(0, static_cast<int>(size), "wkv7_rj");
  FailureOr<Expr> rr = at(op.getReceptance(), {t, h, rj.x});
  if (failed(rr))
    return failure();
  Func y(kernel.name + "_wkv7y" + std::to_string(nextFunc++));
  y(i, h, t) = Halide::cast(f32, 0);
  y(i, h, t) += s(rj.x, i, h, t + 1) * *rr;
  rowOutputStage(y, i, t, {rows, heads, size});
  tensors[op.getResult()] = y;
  define(op.getNewState(), {h, i, j}, s(j, i, h, *steps));
  return success();
}

} // namespace

LoweringOptions LoweringOptions::forTarget(const Halide::Target &target) {
  LoweringOptions options;
  options.integerDot4 = target.arch == Halide::Target::X86 &&
                        target.has_feature(Halide::Target::AVX512_SapphireRapids);
  options.narrow64BitInputs = target.has_feature(Halide::Target::Metal);
  options.hardwareHalfToFloat =
      !target.has_gpu_feature() &&
      ((target.arch == Halide::Target::X86 && target.has_feature(Halide::Target::F16C)) ||
       (target.arch == Halide::Target::ARM && target.bits == 64));
  return options;
}

FailureOr<LoweredKernel> lowerDispatch(DispatchOp dispatch, StringRef name,
                                       const LoweringOptions &options) {
  try {
    return KernelBuilder(dispatch, name, options).build();
  } catch (const Halide::Error &error) {
    return dispatch.emitOpError("could not be expressed in Halide: ") << error.what();
  }
}

bool dispatchReduces(DispatchOp dispatch) {
  bool found = false;
  dispatch.getBody().walk([&](Operation *op) {
    if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op))
      found |= linalgOp.getNumReductionLoops() > 0;
    else if (op->getDialect() && op->getDialect()->getNamespace() == "kiln" &&
             op->getNumRegions() == 0 && op->getName().getStringRef() != "kiln.yield")
      found = true;
  });
  return found;
}

} // namespace kiln::halide
