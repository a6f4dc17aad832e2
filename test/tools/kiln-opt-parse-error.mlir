// A malformed input fails with file:line:col and a non-zero exit code.
// RUN: not kiln-opt %s 2>&1 | FileCheck %s

// CHECK: kiln-opt-parse-error.mlir:[[@LINE+2]]:22: error: expected SSA operand
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = arith.addf %x, : tensor<4xf32>
  return %0 : tensor<4xf32>
}
