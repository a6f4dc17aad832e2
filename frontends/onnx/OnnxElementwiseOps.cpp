// Elementwise ONNX ops (arithmetic, comparisons, logic, activations, casts): each is
// one linalg.generic over the numpy broadcast of its inputs.
#include "frontends/onnx/OnnxLinalgBuilders.h"
#include "frontends/onnx/OnnxNodeImporter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include <onnx/onnx_pb.h>

using namespace mlir;
using namespace kiln::onnx_import;

namespace {

using ScalarFn = llvm::function_ref<Value(OpBuilder &, Location, ValueRange)>;

bool isFloat(Type type) { return isa<FloatType>(type); }

Value constant(OpBuilder &b, Location loc, Type type, double value) {
  return scalarConstant(b, loc, type, value);
}

/// Builds the node's only output elementwise from all of its inputs.
LogicalResult lowerElementwise(NodeImporter &n, Type resultType, ScalarFn fn) {
  SmallVector<Value> inputs;
  SmallVector<SmallVector<int64_t>> shapes;
  for (unsigned i = 0; i < n.numInputs(); ++i) {
    if (!n.hasInput(i))
      continue;
    inputs.push_back(n.input(i));
    if (!inputs.back())
      return failure();
    shapes.push_back(llvm::to_vector(n.inputShape(i)));
  }
  std::optional<SmallVector<int64_t>> shape = broadcastShapes(shapes);
  if (!shape)
    return n.error() << "input shapes do not broadcast";
  return n.setOutput(0, buildElementwise(n.builder(), n.loc(), *shape, resultType,
                                         inputs, fn));
}

/// Elementwise with the result type of the first input.
LogicalResult lowerSameType(NodeImporter &n, ScalarFn fn) {
  return lowerElementwise(n, n.inputElementType(0), fn);
}

/// A unary float op; integer inputs are rejected.
LogicalResult lowerFloatUnary(NodeImporter &n,
                              llvm::function_ref<Value(OpBuilder &, Location, Value)> fn) {
  if (!isFloat(n.inputElementType(0)))
    return n.unsupported("input type " + onnxTypeName(n.inputOnnxType(0)));
  return lowerSameType(
      n, [&](OpBuilder &b, Location loc, ValueRange args) { return fn(b, loc, args[0]); });
}

template <typename MathOp>
LogicalResult lowerMath(NodeImporter &n) {
  return lowerFloatUnary(n, [](OpBuilder &b, Location loc, Value x) -> Value {
    return MathOp::create(b, loc, x);
  });
}

/// Float or integer binary arithmetic, picking signed or unsigned integer ops.
template <typename FloatOp, typename SignedOp, typename UnsignedOp>
LogicalResult lowerArithmetic(NodeImporter &n) {
  bool isUnsigned = n.inputIsUnsigned(0);
  Type type = n.inputElementType(0);
  return lowerSameType(n, [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
    if (isFloat(type))
      return FloatOp::create(b, loc, args[0], args[1]);
    if (isUnsigned)
      return UnsignedOp::create(b, loc, args[0], args[1]);
    return SignedOp::create(b, loc, args[0], args[1]);
  });
}

/// Variadic Min/Max/Sum: a fold of the binary op over all inputs.
template <typename FloatOp, typename SignedOp, typename UnsignedOp>
LogicalResult lowerVariadic(NodeImporter &n) {
  bool isUnsigned = n.inputIsUnsigned(0);
  Type type = n.inputElementType(0);
  return lowerSameType(n, [&](OpBuilder &b, Location loc, ValueRange args) {
    Value acc = args[0];
    for (Value arg : args.drop_front()) {
      if (isFloat(type))
        acc = FloatOp::create(b, loc, acc, arg);
      else if (isUnsigned)
        acc = UnsignedOp::create(b, loc, acc, arg);
      else
        acc = SignedOp::create(b, loc, acc, arg);
    }
    return acc;
  });
}

LogicalResult lowerComparison(NodeImporter &n, arith::CmpFPredicate floatPredicate,
                              arith::CmpIPredicate signedPredicate,
                              arith::CmpIPredicate unsignedPredicate) {
  Type type = n.inputElementType(0);
  bool isUnsigned = n.inputIsUnsigned(0) || type.isInteger(1);
  return lowerElementwise(
      n, n.builder().getI1Type(), [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
        if (isFloat(type))
          return arith::CmpFOp::create(b, loc, floatPredicate, args[0], args[1]);
        return arith::CmpIOp::create(b, loc, isUnsigned ? unsignedPredicate : signedPredicate,
                                     args[0], args[1]);
      });
}

template <typename LogicOp>
LogicalResult lowerLogic(NodeImporter &n) {
  return lowerSameType(n, [](OpBuilder &b, Location loc, ValueRange args) -> Value {
    return LogicOp::create(b, loc, args[0], args[1]);
  });
}

/// Pow: computed in f64 when either side is an integer (numpy's integer power and
/// float-to-int conversions truncate the same way for the suite's value ranges).
LogicalResult lowerPow(NodeImporter &n) {
  Type baseType = n.inputElementType(0);
  bool baseUnsigned = n.inputIsUnsigned(0), expUnsigned = n.inputIsUnsigned(1);
  return lowerSameType(n, [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
    Type compute = isFloat(baseType) ? baseType : b.getF64Type();
    Value base = convertScalar(b, loc, args[0], compute, baseUnsigned, false);
    Value exponent = convertScalar(b, loc, args[1], compute, expUnsigned, false);
    Value result = math::PowFOp::create(b, loc, base, exponent);
    return convertScalar(b, loc, result, baseType, false, baseUnsigned);
  });
}

/// Mod: fmod=1 is C fmod (sign of the dividend); fmod=0 (integers only) is Python's
/// modulo (sign of the divisor).
LogicalResult lowerMod(NodeImporter &n) {
  Type type = n.inputElementType(0);
  bool isUnsigned = n.inputIsUnsigned(0);
  bool fmod = n.intAttr("fmod", 0) != 0;
  if (isFloat(type) && !fmod)
    return n.error() << "fmod must be 1 for floating-point inputs";
  return lowerSameType(n, [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
    Value x = args[0], y = args[1];
    if (isFloat(type))
      return arith::RemFOp::create(b, loc, x, y);
    if (isUnsigned)
      return arith::RemUIOp::create(b, loc, x, y);
    Value rem = arith::RemSIOp::create(b, loc, x, y);
    if (fmod)
      return rem;
    // Python modulo: add the divisor when the remainder is non-zero and its sign
    // differs from the divisor's.
    Value zero = constant(b, loc, type, 0);
    Value nonZero = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, rem, zero);
    Value remNeg = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, rem, zero);
    Value yNeg = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, y, zero);
    Value signsDiffer = arith::XOrIOp::create(b, loc, remNeg, yNeg);
    Value fix = arith::AndIOp::create(b, loc, nonZero, signsDiffer);
    Value adjusted = arith::AddIOp::create(b, loc, rem, y);
    return arith::SelectOp::create(b, loc, fix, adjusted, rem);
  });
}

Value negate(OpBuilder &b, Location loc, Value x) {
  if (isFloat(x.getType()))
    return arith::NegFOp::create(b, loc, x);
  return arith::SubIOp::create(b, loc, constant(b, loc, x.getType(), 0), x);
}

Value sigmoid(OpBuilder &b, Location loc, Value x) {
  Value one = constant(b, loc, x.getType(), 1);
  Value e = math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, x));
  return arith::DivFOp::create(b, loc, one, arith::AddFOp::create(b, loc, one, e));
}

Value softplus(OpBuilder &b, Location loc, Value x) {
  Value one = constant(b, loc, x.getType(), 1);
  return math::LogOp::create(b, loc,
                             arith::AddFOp::create(b, loc, math::ExpOp::create(b, loc, x), one));
}

Value mulConst(OpBuilder &b, Location loc, Value x, double c) {
  return arith::MulFOp::create(b, loc, x, constant(b, loc, x.getType(), c));
}

Value cmpConst(OpBuilder &b, Location loc, arith::CmpFPredicate predicate, Value x,
               double c) {
  return arith::CmpFOp::create(b, loc, predicate, x, constant(b, loc, x.getType(), c));
}

/// Clamps to [lo, hi] with NaN passing through (numpy.clip).
Value clampFloat(OpBuilder &b, Location loc, Value x, Value lo, Value hi) {
  Value r = x;
  if (lo)
    r = arith::MaximumFOp::create(b, loc, r, lo);
  if (hi)
    r = arith::MinimumFOp::create(b, loc, r, hi);
  return r;
}

/// Clip: since opset 11 the bounds are optional scalar inputs (read like broadcast
/// operands, so they may be computed at run time); before, float attributes.
LogicalResult lowerClip(NodeImporter &n) {
  Type type = n.inputElementType(0);
  bool isUnsigned = n.inputIsUnsigned(0);
  bool legacy = n.opset() < 11;
  bool hasLo = legacy || n.hasInput(1), hasHi = legacy || n.hasInput(2);
  double legacyLo = n.floatAttr("min", -std::numeric_limits<float>::max());
  double legacyHi = n.floatAttr("max", std::numeric_limits<float>::max());
  return lowerSameType(n, [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
    Value x = args[0];
    Value lo, hi;
    if (legacy) {
      lo = constant(b, loc, type, legacyLo);
      hi = constant(b, loc, type, legacyHi);
    } else {
      unsigned next = 1;
      lo = hasLo ? args[next++] : Value();
      hi = hasHi ? args[next] : Value();
    }
    if (isFloat(type))
      return clampFloat(b, loc, x, lo, hi);
    if (lo)
      x = isUnsigned ? arith::MaxUIOp::create(b, loc, x, lo).getResult()
                     : arith::MaxSIOp::create(b, loc, x, lo).getResult();
    if (hi)
      x = isUnsigned ? arith::MinUIOp::create(b, loc, x, hi).getResult()
                     : arith::MinSIOp::create(b, loc, x, hi).getResult();
    return x;
  });
}

LogicalResult lowerCastTo(NodeImporter &n, int32_t to) {
  Type toType = elementTypeFor(to, n.context());
  if (!toType)
    return n.unsupported("cast to " + onnxTypeName(to));
  if (!elementTypeFor(n.inputOnnxType(0), n.context()))
    return n.unsupported("cast from " + onnxTypeName(n.inputOnnxType(0)));
  bool fromUnsigned = n.inputIsUnsigned(0), toUnsigned = isUnsignedOnnxType(to);
  Value x = n.input(0);
  if (!x)
    return failure();
  // Only the first input is converted (CastLike's second gives the type).
  return n.setOutput(0, buildElementwise(n.builder(), n.loc(), n.inputShape(0), toType, x,
                                         [&](OpBuilder &b, Location loc, ValueRange args) {
                                           return convertScalar(b, loc, args[0], toType,
                                                                fromUnsigned, toUnsigned);
                                         }));
}

/// Identity-like ops: the output is the input itself.
LogicalResult forward(NodeImporter &n) {
  if (const HostTensor *constant = n.constantInput(0))
    return n.setOutput(0, *constant);
  return n.setOutput(0, n.input(0));
}

LogicalResult lowerDropout(NodeImporter &n) {
  if (n.hasInput(2)) {
    const HostTensor *training = n.constantInput(2);
    if (!training)
      return n.requiresConstant("training_mode");
    if (training->asInt(0) != 0)
      return n.unsupported("training mode");
  }
  if (failed(forward(n)))
    return failure();
  if (!n.hasOutput(1))
    return success();
  OpBuilder &b = n.builder();
  return n.setOutput(1, filledTensor(b, n.loc(), n.inputShape(0),
                                     constant(b, n.loc(), b.getI1Type(), 1)));
}

} // namespace

void kiln::onnx_import::addElementwiseLowerings(OpLoweringTable &table) {
  table["Add"] = lowerArithmetic<arith::AddFOp, arith::AddIOp, arith::AddIOp>;
  table["Sub"] = lowerArithmetic<arith::SubFOp, arith::SubIOp, arith::SubIOp>;
  table["Mul"] = lowerArithmetic<arith::MulFOp, arith::MulIOp, arith::MulIOp>;
  table["Div"] = lowerArithmetic<arith::DivFOp, arith::DivSIOp, arith::DivUIOp>;
  table["Max"] = lowerVariadic<arith::MaximumFOp, arith::MaxSIOp, arith::MaxUIOp>;
  table["Min"] = lowerVariadic<arith::MinimumFOp, arith::MinSIOp, arith::MinUIOp>;
  table["Sum"] = lowerVariadic<arith::AddFOp, arith::AddIOp, arith::AddIOp>;
  table["Mean"] = [](NodeImporter &n) {
    Type type = n.inputElementType(0);
    if (!isFloat(type))
      return n.unsupported("input type " + onnxTypeName(n.inputOnnxType(0)));
    return lowerSameType(n, [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
      Value acc = args[0];
      for (Value arg : args.drop_front())
        acc = arith::AddFOp::create(b, loc, acc, arg);
      return arith::DivFOp::create(b, loc, acc, constant(b, loc, type, args.size()));
    });
  };
  table["Pow"] = lowerPow;
  table["Mod"] = lowerMod;
  table["BitShift"] = [](NodeImporter &n) {
    bool left = n.stringAttr("direction", "") == "LEFT";
    return lowerSameType(n, [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
      if (left)
        return arith::ShLIOp::create(b, loc, args[0], args[1]);
      return arith::ShRUIOp::create(b, loc, args[0], args[1]);
    });
  };

  table["Equal"] = [](NodeImporter &n) {
    return lowerComparison(n, arith::CmpFPredicate::OEQ, arith::CmpIPredicate::eq,
                           arith::CmpIPredicate::eq);
  };
  table["Less"] = [](NodeImporter &n) {
    return lowerComparison(n, arith::CmpFPredicate::OLT, arith::CmpIPredicate::slt,
                           arith::CmpIPredicate::ult);
  };
  table["LessOrEqual"] = [](NodeImporter &n) {
    return lowerComparison(n, arith::CmpFPredicate::OLE, arith::CmpIPredicate::sle,
                           arith::CmpIPredicate::ule);
  };
  table["Greater"] = [](NodeImporter &n) {
    return lowerComparison(n, arith::CmpFPredicate::OGT, arith::CmpIPredicate::sgt,
                           arith::CmpIPredicate::ugt);
  };
  table["GreaterOrEqual"] = [](NodeImporter &n) {
    return lowerComparison(n, arith::CmpFPredicate::OGE, arith::CmpIPredicate::sge,
                           arith::CmpIPredicate::uge);
  };
  table["And"] = lowerLogic<arith::AndIOp>;
  table["Or"] = lowerLogic<arith::OrIOp>;
  table["Xor"] = lowerLogic<arith::XOrIOp>;
  table["Not"] = [](NodeImporter &n) {
    return lowerSameType(n, [](OpBuilder &b, Location loc, ValueRange args) -> Value {
      return arith::XOrIOp::create(b, loc, args[0], constant(b, loc, b.getI1Type(), 1));
    });
  };
  table["Where"] = [](NodeImporter &n) {
    return lowerElementwise(n, n.inputElementType(1),
                            [](OpBuilder &b, Location loc, ValueRange args) -> Value {
                              return arith::SelectOp::create(b, loc, args[0], args[1],
                                                             args[2]);
                            });
  };

  table["Neg"] = [](NodeImporter &n) {
    return lowerSameType(n, [](OpBuilder &b, Location loc, ValueRange args) {
      return negate(b, loc, args[0]);
    });
  };
  table["Abs"] = [](NodeImporter &n) {
    bool isUnsigned = n.inputIsUnsigned(0);
    return lowerSameType(n, [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
      Value x = args[0];
      if (isFloat(x.getType()))
        return math::AbsFOp::create(b, loc, x);
      return isUnsigned ? x : math::AbsIOp::create(b, loc, x).getResult();
    });
  };
  table["Sign"] = [](NodeImporter &n) {
    return lowerSameType(n, [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
      Value x = args[0];
      Type type = x.getType();
      Value one = constant(b, loc, type, 1), minusOne = constant(b, loc, type, -1),
            zero = constant(b, loc, type, 0);
      if (isFloat(type)) {
        // NaN and zeros map to themselves.
        Value neg = arith::SelectOp::create(b, loc, cmpConst(b, loc, arith::CmpFPredicate::OLT, x, 0), minusOne, x);
        return arith::SelectOp::create(b, loc, cmpConst(b, loc, arith::CmpFPredicate::OGT, x, 0), one, neg);
      }
      bool isUnsigned = n.inputIsUnsigned(0);
      Value pos = arith::CmpIOp::create(b, loc, isUnsigned ? arith::CmpIPredicate::ugt : arith::CmpIPredicate::sgt, x, zero);
      Value neg = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, x, zero);
      Value negOrZero = isUnsigned ? zero : arith::SelectOp::create(b, loc, neg, minusOne, zero).getResult();
      return arith::SelectOp::create(b, loc, pos, one, negOrZero);
    });
  };
  table["Reciprocal"] = [](NodeImporter &n) {
    return lowerFloatUnary(n, [](OpBuilder &b, Location loc, Value x) -> Value {
      return arith::DivFOp::create(b, loc, constant(b, loc, x.getType(), 1), x);
    });
  };
  table["Sqrt"] = lowerMath<math::SqrtOp>;
  table["Exp"] = lowerMath<math::ExpOp>;
  table["Log"] = lowerMath<math::LogOp>;
  table["Erf"] = lowerMath<math::ErfOp>;
  table["Tanh"] = lowerMath<math::TanhOp>;
  table["Floor"] = lowerMath<math::FloorOp>;
  table["Ceil"] = lowerMath<math::CeilOp>;
  table["Round"] = lowerMath<math::RoundEvenOp>;
  table["Sin"] = lowerMath<math::SinOp>;
  table["Cos"] = lowerMath<math::CosOp>;
  table["Tan"] = lowerMath<math::TanOp>;
  table["Asin"] = lowerMath<math::AsinOp>;
  table["Acos"] = lowerMath<math::AcosOp>;
  table["Atan"] = lowerMath<math::AtanOp>;
  table["Sinh"] = lowerMath<math::SinhOp>;
  table["Cosh"] = lowerMath<math::CoshOp>;
  table["Asinh"] = lowerMath<math::AsinhOp>;
  table["Acosh"] = lowerMath<math::AcoshOp>;
  table["Atanh"] = lowerMath<math::AtanhOp>;
  table["Sigmoid"] = [](NodeImporter &n) { return lowerFloatUnary(n, sigmoid); };
  table["Softplus"] = [](NodeImporter &n) { return lowerFloatUnary(n, softplus); };
  table["Softsign"] = [](NodeImporter &n) {
    return lowerFloatUnary(n, [](OpBuilder &b, Location loc, Value x) -> Value {
      Value denom = arith::AddFOp::create(b, loc, constant(b, loc, x.getType(), 1),
                                          math::AbsFOp::create(b, loc, x));
      return arith::DivFOp::create(b, loc, x, denom);
    });
  };
  table["Mish"] = [](NodeImporter &n) {
    return lowerFloatUnary(n, [](OpBuilder &b, Location loc, Value x) -> Value {
      return arith::MulFOp::create(b, loc, x, math::TanhOp::create(b, loc, softplus(b, loc, x)));
    });
  };
  table["Relu"] = [](NodeImporter &n) {
    return lowerSameType(n, [](OpBuilder &b, Location loc, ValueRange args) -> Value {
      Value x = args[0];
      Value zero = constant(b, loc, x.getType(), 0);
      if (isFloat(x.getType()))
        return arith::MaximumFOp::create(b, loc, x, zero);
      return arith::MaxSIOp::create(b, loc, x, zero);
    });
  };
  table["LeakyRelu"] = [](NodeImporter &n) {
    double alpha = n.floatAttr("alpha", 0.01f);
    return lowerFloatUnary(n, [&](OpBuilder &b, Location loc, Value x) -> Value {
      return arith::SelectOp::create(b, loc, cmpConst(b, loc, arith::CmpFPredicate::OLT, x, 0),
                                     mulConst(b, loc, x, alpha), x);
    });
  };
  table["PRelu"] = [](NodeImporter &n) {
    if (!isFloat(n.inputElementType(0)))
      return n.unsupported("input type " + onnxTypeName(n.inputOnnxType(0)));
    return lowerSameType(n, [](OpBuilder &b, Location loc, ValueRange args) -> Value {
      Value x = args[0];
      return arith::SelectOp::create(b, loc, cmpConst(b, loc, arith::CmpFPredicate::OLT, x, 0),
                                     arith::MulFOp::create(b, loc, args[1], x), x);
    });
  };
  table["ThresholdedRelu"] = [](NodeImporter &n) {
    double alpha = n.floatAttr("alpha", 1.0f);
    return lowerFloatUnary(n, [&](OpBuilder &b, Location loc, Value x) -> Value {
      return arith::SelectOp::create(b, loc, cmpConst(b, loc, arith::CmpFPredicate::OGT, x, alpha),
                                     x, constant(b, loc, x.getType(), 0));
    });
  };
  table["Elu"] = [](NodeImporter &n) {
    double alpha = n.floatAttr("alpha", 1.0f);
    return lowerFloatUnary(n, [&](OpBuilder &b, Location loc, Value x) -> Value {
      Value em1 = arith::SubFOp::create(b, loc, math::ExpOp::create(b, loc, x),
                                        constant(b, loc, x.getType(), 1));
      return arith::SelectOp::create(b, loc, cmpConst(b, loc, arith::CmpFPredicate::OLT, x, 0),
                                     mulConst(b, loc, em1, alpha), x);
    });
  };
  table["Celu"] = [](NodeImporter &n) {
    double alpha = n.floatAttr("alpha", 1.0f);
    return lowerFloatUnary(n, [&](OpBuilder &b, Location loc, Value x) -> Value {
      // max(0, x) + min(0, alpha * (exp(x / alpha) - 1))
      Value zero = constant(b, loc, x.getType(), 0);
      Value e = math::ExpOp::create(b, loc, mulConst(b, loc, x, 1.0 / alpha));
      Value neg = mulConst(b, loc, arith::SubFOp::create(b, loc, e, constant(b, loc, x.getType(), 1)), alpha);
      return arith::AddFOp::create(b, loc, arith::MaximumFOp::create(b, loc, zero, x),
                                   arith::MinimumFOp::create(b, loc, zero, neg));
    });
  };
  table["Selu"] = [](NodeImporter &n) {
    double alpha = n.floatAttr("alpha", 1.67326319217681884765625f);
    double gamma = n.floatAttr("gamma", 1.05070102214813232421875f);
    return lowerFloatUnary(n, [&](OpBuilder &b, Location loc, Value x) -> Value {
      Value neg = mulConst(b, loc, arith::SubFOp::create(b, loc, math::ExpOp::create(b, loc, x), constant(b, loc, x.getType(), 1)), alpha);
      Value r = arith::SelectOp::create(b, loc, cmpConst(b, loc, arith::CmpFPredicate::OLE, x, 0), neg, x);
      return mulConst(b, loc, r, gamma);
    });
  };
  table["HardSigmoid"] = [](NodeImporter &n) {
    double alpha = n.floatAttr("alpha", 0.2f), beta = n.floatAttr("beta", 0.5f);
    return lowerFloatUnary(n, [&](OpBuilder &b, Location loc, Value x) -> Value {
      Type type = x.getType();
      Value y = arith::AddFOp::create(b, loc, mulConst(b, loc, x, alpha), constant(b, loc, type, beta));
      return clampFloat(b, loc, y, constant(b, loc, type, 0), constant(b, loc, type, 1));
    });
  };
  table["HardSwish"] = [](NodeImporter &n) {
    return lowerFloatUnary(n, [&](OpBuilder &b, Location loc, Value x) -> Value {
      Type type = x.getType();
      Value y = arith::AddFOp::create(b, loc, mulConst(b, loc, x, 1.0 / 6), constant(b, loc, type, 0.5));
      y = clampFloat(b, loc, y, constant(b, loc, type, 0), constant(b, loc, type, 1));
      return arith::MulFOp::create(b, loc, x, y);
    });
  };
  table["Shrink"] = [](NodeImporter &n) {
    double bias = n.floatAttr("bias", 0), lambd = n.floatAttr("lambd", 0.5f);
    bool isUnsigned = n.inputIsUnsigned(0);
    return lowerSameType(n, [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
      Value x = args[0];
      Type type = x.getType();
      Value zero = constant(b, loc, type, 0);
      if (isFloat(type)) {
        Value below = cmpConst(b, loc, arith::CmpFPredicate::OLT, x, -lambd);
        Value above = cmpConst(b, loc, arith::CmpFPredicate::OGT, x, lambd);
        Value plus = arith::AddFOp::create(b, loc, x, constant(b, loc, type, bias));
        Value minus = arith::SubFOp::create(b, loc, x, constant(b, loc, type, bias));
        return arith::SelectOp::create(b, loc, below, plus, arith::SelectOp::create(b, loc, above, minus, zero));
      }
      // Integer inputs: compare in f64 so fractional lambdas behave like the reference.
      Value xf = convertScalar(b, loc, x, b.getF64Type(), isUnsigned, false);
      Value below = cmpConst(b, loc, arith::CmpFPredicate::OLT, xf, -lambd);
      Value above = cmpConst(b, loc, arith::CmpFPredicate::OGT, xf, lambd);
      Value plus = arith::AddIOp::create(b, loc, x, constant(b, loc, type, bias));
      Value minus = arith::SubIOp::create(b, loc, x, constant(b, loc, type, bias));
      return arith::SelectOp::create(b, loc, below, plus, arith::SelectOp::create(b, loc, above, minus, zero));
    });
  };
  table["IsNaN"] = [](NodeImporter &n) {
    return lowerElementwise(n, n.builder().getI1Type(),
                            [](OpBuilder &b, Location loc, ValueRange args) -> Value {
                              return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO,
                                                           args[0], args[0]);
                            });
  };
  table["IsInf"] = [](NodeImporter &n) {
    bool negative = n.intAttr("detect_negative", 1), positive = n.intAttr("detect_positive", 1);
    return lowerElementwise(n, n.builder().getI1Type(),
                            [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
                              double inf = std::numeric_limits<double>::infinity();
                              Value isPos = cmpConst(b, loc, arith::CmpFPredicate::OEQ, args[0], inf);
                              Value isNeg = cmpConst(b, loc, arith::CmpFPredicate::OEQ, args[0], -inf);
                              Value no = constant(b, loc, b.getI1Type(), 0);
                              return arith::OrIOp::create(b, loc, positive ? isPos : no,
                                                          negative ? isNeg : no);
                            });
  };
  table["Clip"] = lowerClip;
  table["Cast"] = [](NodeImporter &n) {
    return lowerCastTo(n, int32_t(n.intAttr("to", 0)));
  };
  table["CastLike"] = [](NodeImporter &n) { return lowerCastTo(n, n.inputOnnxType(1)); };
  table["Identity"] = forward;
  table["Dropout"] = lowerDropout;
}
