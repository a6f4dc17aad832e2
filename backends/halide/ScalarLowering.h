// Translates the scalar arith/math ops of a kernel body into Halide expressions.
#ifndef KILN_BACKENDS_HALIDE_SCALARLOWERING_H
#define KILN_BACKENDS_HALIDE_SCALARLOWERING_H

#include "mlir/IR/Operation.h"
#include "mlir/Support/LLVM.h"

#include <Halide.h>

namespace kiln::halide {

/// Returns the Halide expression computing `op`'s single result from the expressions
/// of its operands, or emits an error at `op` naming what is unsupported.
mlir::FailureOr<Halide::Expr> lowerScalarOp(mlir::Operation *op,
                                            llvm::ArrayRef<Halide::Expr> operands);

/// `value` (f16 or bf16) as f32, exactly, in a few integer operations per vector:
/// bf16 is the high half of an f32; f16's exponent and mantissa shifted into place
/// and scaled by 2^112 (which also makes its subnormals exact), then its sign. Halide
/// 14 emulates every f16 conversion on x86 in about twice the instructions, which made
/// products reading F16 weights compute-bound. (A host that sets the denormals-are-zero
/// flag reads f16 subnormals, below 6.1e-5 in magnitude, as zero.)
Halide::Expr widenHalf(const Halide::Expr &value);
/// widenHalf for f16 values known to be finite (a weight the compiler scanned): 4 vector
/// operations instead of ~10 (an infinity or NaN would read as a finite number of
/// magnitude 65536 to 131008). A one-row product with F16 weights ran 2.2x faster where
/// the conversion, not memory, was the limit (AMD Zen 4).
Halide::Expr widenFiniteHalf(const Halide::Expr &value);
/// widenFiniteHalf without its last step: the value times 2^-112 (exact: an f16
/// subnormal becomes an f32 subnormal), 3 vector operations. A product can take the
/// 2^112 on its other operand instead (lowerFloatMatvec).
Halide::Expr widenFiniteHalfUnscaled(const Halide::Expr &value);

} // namespace kiln::halide

#endif // KILN_BACKENDS_HALIDE_SCALARLOWERING_H
