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

} // namespace kiln::halide

#endif // KILN_BACKENDS_HALIDE_SCALARLOWERING_H
