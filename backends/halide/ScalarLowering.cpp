// arith/math scalar ops → Halide Exprs, with MLIR's semantics where Halide's differ
// (integer division rounds toward zero in MLIR, Euclidean in Halide; NaN comparisons).
#include "backends/halide/ScalarLowering.h"

#include "backends/halide/HalideTypes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using Halide::Expr;

namespace kiln::halide {

std::optional<Halide::Type> toHalideType(Type type) {
  if (type.isF32())
    return Halide::Float(32);
  if (type.isF64())
    return Halide::Float(64);
  if (type.isF16())
    return Halide::Float(16);
  if (type.isBF16())
    return Halide::BFloat(16);
  if (type.isIndex())
    return Halide::Int(32);
  if (auto integer = dyn_cast<IntegerType>(type)) {
    unsigned width = integer.getWidth();
    if (width == 1)
      return Halide::Bool();
    if (width != 8 && width != 16 && width != 32 && width != 64)
      return std::nullopt;
    return integer.isUnsigned() ? Halide::UInt(width) : Halide::Int(width);
  }
  return std::nullopt;
}

namespace {

/// tanh that vectorizes. Halide 14 calls libm's tanhf lane by lane (8.7% of a Gemma
/// prefill, in GELU), but lowers exp to a vector polynomial, so f32 tanh is built from
/// it: sign(x) (1 - e) / (1 + e) with e = exp(-2|x|), which cannot overflow; below
/// |x| = 1/4, where 1 - e cancels, the odd Taylor polynomial to x^9 (its first omitted
/// term is below 3e-9 relative there). Seen: 2.4e-7 relative at worst (e2e.kiln_ops_vs_numpy).
Halide::Expr vectorTanh(const Halide::Expr &x) {
  if (x.type() != Halide::Float(32, x.type().lanes()))
    return Halide::tanh(x);
  auto c = [&](double v) { return Halide::Internal::make_const(x.type(), v); };
  Halide::Expr a = Halide::abs(x), e = Halide::exp(c(-2) * a);
  Halide::Expr large = (c(1) - e) / (c(1) + e);
  Halide::Expr x2 = x * x;
  Halide::Expr small =
      x * (c(1) + x2 * (c(-1.0 / 3) + x2 * (c(2.0 / 15) + x2 * (c(-17.0 / 315) +
                                                               x2 * c(62.0 / 2835)))));
  return Halide::select(a < c(0.25), small, Halide::select(x < c(0), -large, large));
}

Expr asUnsigned(const Expr &e) {
  if (e.type().is_bool())
    return e;
  return Halide::reinterpret(e.type().with_code(Halide::Type::UInt), e);
}

Expr asSigned(const Expr &e, Halide::Type signedType) {
  if (signedType.is_bool())
    return e;
  return Halide::reinterpret(signedType, e);
}

/// MLIR's divsi (round toward zero) from Halide's Euclidean division.
Expr truncatingDiv(const Expr &a, const Expr &b) {
  Expr q = a / b, r = a % b;
  Expr one = Halide::cast(a.type(), 1);
  return Halide::select(a < 0 && r != 0, q + Halide::select(b > 0, one, -one), q);
}

/// MLIR's floordivsi (round toward negative infinity).
Expr flooringDiv(const Expr &a, const Expr &b) {
  Expr q = a / b, r = a % b;
  return Halide::select(b < 0 && r != 0, q - Halide::cast(a.type(), 1), q);
}

Expr integerCompare(arith::CmpIPredicate predicate, Expr a, Expr b) {
  switch (predicate) {
  case arith::CmpIPredicate::eq:
    return a == b;
  case arith::CmpIPredicate::ne:
    return a != b;
  case arith::CmpIPredicate::slt:
    return a < b;
  case arith::CmpIPredicate::sle:
    return a <= b;
  case arith::CmpIPredicate::sgt:
    return a > b;
  case arith::CmpIPredicate::sge:
    return a >= b;
  case arith::CmpIPredicate::ult:
    return asUnsigned(a) < asUnsigned(b);
  case arith::CmpIPredicate::ule:
    return asUnsigned(a) <= asUnsigned(b);
  case arith::CmpIPredicate::ugt:
    return asUnsigned(a) > asUnsigned(b);
  case arith::CmpIPredicate::uge:
    return asUnsigned(a) >= asUnsigned(b);
  }
  llvm_unreachable("unknown cmpi predicate");
}

Expr floatCompare(arith::CmpFPredicate predicate, const Expr &a, const Expr &b) {
  Expr unordered = Halide::is_nan(a) || Halide::is_nan(b);
  switch (predicate) {
  case arith::CmpFPredicate::AlwaysFalse:
    return Halide::Internal::const_false();
  case arith::CmpFPredicate::AlwaysTrue:
    return Halide::Internal::const_true();
  case arith::CmpFPredicate::OEQ:
    return !unordered && a == b;
  case arith::CmpFPredicate::OGT:
    return !unordered && a > b;
  case arith::CmpFPredicate::OGE:
    return !unordered && a >= b;
  case arith::CmpFPredicate::OLT:
    return !unordered && a < b;
  case arith::CmpFPredicate::OLE:
    return !unordered && a <= b;
  case arith::CmpFPredicate::ONE:
    return !unordered && a != b;
  case arith::CmpFPredicate::ORD:
    return !unordered;
  case arith::CmpFPredicate::UEQ:
    return unordered || a == b;
  case arith::CmpFPredicate::UGT:
    return unordered || a > b;
  case arith::CmpFPredicate::UGE:
    return unordered || a >= b;
  case arith::CmpFPredicate::ULT:
    return unordered || a < b;
  case arith::CmpFPredicate::ULE:
    return unordered || a <= b;
  case arith::CmpFPredicate::UNE:
    return unordered || a != b;
  case arith::CmpFPredicate::UNO:
    return unordered;
  }
  llvm_unreachable("unknown cmpf predicate");
}

/// NaN-propagating min/max (arith.minimumf/maximumf; Halide's min/max may drop NaNs).
Expr propagateNaN(const Expr &a, const Expr &b, const Expr &result) {
  return Halide::select(Halide::is_nan(a), a, Halide::select(Halide::is_nan(b), b, result));
}

} // namespace

Expr widenHalf(const Expr &value) {
  int lanes = value.type().lanes();
  Halide::Type u16 = Halide::UInt(16, lanes), u32 = Halide::UInt(32, lanes),
               f32 = Halide::Float(32, lanes);
  Expr bits = Halide::cast(u32, Halide::reinterpret(u16, value));
  if (value.type().is_bfloat())
    return Halide::reinterpret(f32, bits << 16);
  Expr magnitude = (bits & 0x7fff) << 13;
  // Exponent 31 (infinities and NaNs) keeps its mantissa under f32's exponent 255.
  Expr scaled = Halide::select(magnitude >= 0x0f800000, Halide::reinterpret(f32, magnitude | 0x7f800000),
                               Halide::reinterpret(f32, magnitude) * 5.192296858534828e33f);
  return Halide::reinterpret(f32, Halide::reinterpret(u32, scaled) | ((bits & 0x8000) << 16));
}

Expr widenFiniteHalfUnscaled(const Expr &value) {
  int lanes = value.type().lanes();
  Halide::Type u32 = Halide::UInt(32, lanes), f32 = Halide::Float(32, lanes);
  // Sign-extended to 32 bits and shifted by 13, the sign lands in bit 31 with copies
  // of it in bits 30-28, which the mask clears: sign, exponent and mantissa in f32's
  // places, the value times 2^-112.
  Expr extended = Halide::reinterpret(
      u32, Halide::cast(Halide::Int(32, lanes), Halide::reinterpret(Halide::Int(16, lanes), value)));
  Expr bits = (extended << 13) & Halide::Internal::make_const(u32, static_cast<uint64_t>(0x8fffffffu));
  return Halide::reinterpret(f32, bits);
}

Expr widenFiniteHalf(const Expr &value) {
  // Scaled by 2^112 as in widenHalf. strict_float: Halide's simplifier would otherwise
  // move the scale past the product this value enters (w * x * 2^112), where w * x can
  // fall below f32's normal range.
  return Halide::strict_float(widenFiniteHalfUnscaled(value) * 5.192296858534828e33f);
}

FailureOr<Expr> lowerScalarOp(Operation *op, ArrayRef<Expr> operands) {
  if (op->getNumResults() != 1)
    return op->emitOpError("cannot be lowered to a Halide expression: expected one result");
  Type resultType = op->getResult(0).getType();
  std::optional<Halide::Type> type = toHalideType(resultType);
  if (!type)
    return op->emitOpError("has a result type the Halide backend cannot hold: ") << resultType;
  bool isBool = type->is_bool();
  // Half-precision arithmetic is computed in f32 and rounded once at the end (Halide 14
  // cannot generate every f16 operation on x86); a bitcast must see the raw bits.
  std::vector<Expr> x(operands.begin(), operands.end());
  if (!isa<arith::BitcastOp>(op))
    for (Expr &e : x)
      if (e.type().is_float() && e.type().bits() == 16)
        e = widenHalf(e);

  using namespace arith;
  std::optional<Expr> e =
      llvm::TypeSwitch<Operation *, std::optional<Expr>>(op)
          .Case([&](ConstantOp c) -> std::optional<Expr> {
            Attribute value = c.getValue();
            if (auto f = dyn_cast<FloatAttr>(value))
              return Halide::Internal::make_const(*type, f.getValueAsDouble());
            if (auto i = dyn_cast<IntegerAttr>(value)) {
              if (isBool)
                return Halide::Internal::make_bool(i.getValue().getBoolValue());
              return Halide::Internal::make_const(*type, static_cast<int64_t>(i.getValue().getSExtValue()));
            }
            return std::nullopt;
          })
          .Case([&](AddFOp) { return x[0] + x[1]; })
          .Case([&](SubFOp) { return x[0] - x[1]; })
          .Case([&](MulFOp) { return x[0] * x[1]; })
          .Case([&](DivFOp) { return x[0] / x[1]; })
          .Case([&](RemFOp) { return x[0] - x[1] * Halide::trunc(x[0] / x[1]); })
          .Case([&](NegFOp) { return -x[0]; })
          .Case([&](MaximumFOp) { return propagateNaN(x[0], x[1], Halide::max(x[0], x[1])); })
          .Case([&](MinimumFOp) { return propagateNaN(x[0], x[1], Halide::min(x[0], x[1])); })
          .Case([&](MaxNumFOp) { return Halide::max(x[0], x[1]); })
          .Case([&](MinNumFOp) { return Halide::min(x[0], x[1]); })
          .Case([&](AddIOp) -> Expr { return isBool ? (x[0] != x[1]) : x[0] + x[1]; })
          .Case([&](SubIOp) -> Expr { return isBool ? (x[0] != x[1]) : x[0] - x[1]; })
          .Case([&](MulIOp) -> Expr { return isBool ? (x[0] && x[1]) : x[0] * x[1]; })
          .Case([&](DivSIOp) { return truncatingDiv(x[0], x[1]); })
          .Case([&](DivUIOp) { return asSigned(asUnsigned(x[0]) / asUnsigned(x[1]), *type); })
          .Case([&](FloorDivSIOp) { return flooringDiv(x[0], x[1]); })
          .Case([&](RemSIOp) { return x[0] - truncatingDiv(x[0], x[1]) * x[1]; })
          .Case([&](RemUIOp) { return asSigned(asUnsigned(x[0]) % asUnsigned(x[1]), *type); })
          .Case([&](MaxSIOp) { return Halide::max(x[0], x[1]); })
          .Case([&](MinSIOp) { return Halide::min(x[0], x[1]); })
          .Case([&](MaxUIOp) { return asSigned(Halide::max(asUnsigned(x[0]), asUnsigned(x[1])), *type); })
          .Case([&](MinUIOp) { return asSigned(Halide::min(asUnsigned(x[0]), asUnsigned(x[1])), *type); })
          .Case([&](AndIOp) -> Expr { return isBool ? (x[0] && x[1]) : (x[0] & x[1]); })
          .Case([&](OrIOp) -> Expr { return isBool ? (x[0] || x[1]) : (x[0] | x[1]); })
          .Case([&](XOrIOp) -> Expr { return isBool ? (x[0] != x[1]) : (x[0] ^ x[1]); })
          .Case([&](ShLIOp) { return x[0] << x[1]; })
          .Case([&](ShRSIOp) { return x[0] >> x[1]; })
          .Case([&](ShRUIOp) { return asSigned(asUnsigned(x[0]) >> asUnsigned(x[1]), *type); })
          .Case([&](CmpIOp c) { return integerCompare(c.getPredicate(), x[0], x[1]); })
          .Case([&](CmpFOp c) { return floatCompare(c.getPredicate(), x[0], x[1]); })
          .Case([&](SelectOp) { return Halide::select(x[0], x[1], x[2]); })
          .Case([&](SIToFPOp) { return Halide::cast(*type, x[0]); })
          .Case([&](UIToFPOp) { return Halide::cast(*type, asUnsigned(x[0])); })
          .Case([&](FPToSIOp) -> Expr {
            return isBool ? (x[0] != 0) : Halide::cast(*type, x[0]);
          })
          .Case([&](FPToUIOp) -> Expr {
            return isBool ? (x[0] != 0)
                          : asSigned(Halide::cast(type->with_code(Halide::Type::UInt), x[0]),
                                     *type);
          })
          .Case([&](ExtFOp) { return Halide::cast(*type, x[0]); })
          .Case([&](TruncFOp trunc) -> std::optional<Expr> {
            std::optional<RoundingMode> mode = trunc.getRoundingmode();
            if (!mode || *mode == RoundingMode::to_nearest_even)
              return Halide::cast(*type, x[0]);
            // f32 -> bf16 toward zero keeps the high half of the bits.
            if (*mode == RoundingMode::toward_zero && type->is_bfloat() &&
                operands[0].type() == Halide::Float(32))
              return Halide::reinterpret(
                  *type, Halide::cast(Halide::UInt(16),
                                      Halide::reinterpret(Halide::UInt(32), operands[0]) >> 16));
            return std::nullopt;
          })
          .Case([&](ExtSIOp) -> Expr {
            if (x[0].type().is_bool())
              return Halide::select(x[0], Halide::cast(*type, -1), Halide::cast(*type, 0));
            return Halide::cast(*type, x[0]);
          })
          .Case([&](ExtUIOp) { return Halide::cast(*type, asUnsigned(x[0])); })
          .Case([&](TruncIOp) -> Expr {
            return isBool ? ((x[0] & 1) != 0) : Halide::cast(*type, x[0]);
          })
          .Case([&](IndexCastOp) { return Halide::cast(*type, x[0]); })
          .Case([&](IndexCastUIOp) { return Halide::cast(*type, x[0]); })
          .Case([&](BitcastOp) { return Halide::reinterpret(*type, x[0]); })
          .Case([&](math::AbsFOp) { return Halide::abs(x[0]); })
          .Case([&](math::AbsIOp) { return Halide::cast(*type, Halide::abs(x[0])); })
          .Case([&](math::ExpOp) { return Halide::exp(x[0]); })
          .Case([&](math::Exp2Op) { return Halide::pow(Halide::cast(*type, 2), x[0]); })
          .Case([&](math::ExpM1Op) { return Halide::exp(x[0]) - Halide::cast(*type, 1); })
          .Case([&](math::LogOp) { return Halide::log(x[0]); })
          .Case([&](math::Log2Op) { return Halide::log(x[0]) / Halide::Internal::make_const(*type, M_LN2); })
          .Case([&](math::Log10Op) { return Halide::log(x[0]) / Halide::Internal::make_const(*type, M_LN10); })
          .Case([&](math::Log1pOp) { return Halide::log(Halide::cast(*type, 1) + x[0]); })
          .Case([&](math::SqrtOp) { return Halide::sqrt(x[0]); })
          .Case([&](math::RsqrtOp) { return Halide::cast(*type, 1) / Halide::sqrt(x[0]); })
          .Case([&](math::PowFOp) { return Halide::pow(x[0], x[1]); })
          .Case([&](math::FPowIOp) { return Halide::pow(x[0], Halide::cast(*type, x[1])); })
          .Case([&](math::TanhOp) { return vectorTanh(x[0]); })
          .Case([&](math::ErfOp) { return Halide::erf(x[0]); })
          .Case([&](math::SinOp) { return Halide::sin(x[0]); })
          .Case([&](math::CosOp) { return Halide::cos(x[0]); })
          .Case([&](math::TanOp) { return Halide::tan(x[0]); })
          .Case([&](math::AsinOp) { return Halide::asin(x[0]); })
          .Case([&](math::AcosOp) { return Halide::acos(x[0]); })
          .Case([&](math::AtanOp) { return Halide::atan(x[0]); })
          .Case([&](math::Atan2Op) { return Halide::atan2(x[0], x[1]); })
          .Case([&](math::SinhOp) { return Halide::sinh(x[0]); })
          .Case([&](math::CoshOp) { return Halide::cosh(x[0]); })
          .Case([&](math::AsinhOp) { return Halide::asinh(x[0]); })
          .Case([&](math::AcoshOp) { return Halide::acosh(x[0]); })
          .Case([&](math::AtanhOp) { return Halide::atanh(x[0]); })
          .Case([&](math::FloorOp) { return Halide::floor(x[0]); })
          .Case([&](math::CeilOp) { return Halide::ceil(x[0]); })
          .Case([&](math::RoundEvenOp) { return Halide::round(x[0]); })
          .Case([&](math::RoundOp) {
            // Ties away from zero.
            return Halide::select(x[0] < 0, -Halide::floor(Halide::Internal::make_const(*type, 0.5) - x[0]),
                                  Halide::floor(x[0] + Halide::Internal::make_const(*type, 0.5)));
          })
          .Case([&](math::TruncOp) { return Halide::trunc(x[0]); })
          .Case([&](math::FmaOp) { return x[0] * x[1] + x[2]; })
          .Case([&](math::IsNaNOp) { return Halide::is_nan(x[0]); })
          .Case([&](math::IsInfOp) { return Halide::is_inf(x[0]); })
          .Case([&](math::IsFiniteOp) { return Halide::is_finite(x[0]); })
          .Case([&](math::CopySignOp) {
            return Halide::select((x[1] < 0) || (x[1] == 0 && Halide::cast(*type, 1) / x[1] < 0),
                                  -Halide::abs(x[0]), Halide::abs(x[0]));
          })
          .Default([](Operation *) { return std::nullopt; });
  if (!e)
    return op->emitOpError("is not supported by the Halide backend");
  if (e->type() != *type)
    *e = Halide::cast(*type, *e);
  return *e;
}

} // namespace kiln::halide
