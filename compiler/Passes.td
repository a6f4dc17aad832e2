// kiln's compiler passes. Each is defined in compiler/Transforms/<Name>.cpp and tested
// in test/Transforms/<pass-name>.mlir.
#ifndef KILN_COMPILER_PASSES_TD
#define KILN_COMPILER_PASSES_TD

include "mlir/Pass/PassBase.td"

def FormDispatches : Pass<"kiln-form-dispatches", "mlir::func::FuncOp"> {
  let summary = "Wraps every kernel-producing op in its own kiln.dispatch region";
  let description = [{
    Makes kernels explicit: each op that computes a tensor (linalg ops, tensor-typed
    arith/math ops, and the named kiln ops) is moved into a `kiln.dispatch` region
    that becomes one kernel. Operands that are cheap to rematerialize (constant-shaped
    `tensor.empty`, scalar and splat `arith.constant`) are cloned into the region so
    they never occupy memory; everything else becomes a dispatch input. Ops already in
    a dispatch are left alone, so the pass is idempotent. Fusing several ops into one
    dispatch is a later pass's job.
  }];
  let dependentDialects = ["kiln::KilnDialect"];
}

#endif // KILN_COMPILER_PASSES_TD
