// kiln-fold-weight-layouts: a transpose of a weight becomes a weight stored transposed.
// RUN: kiln-opt %s --kiln-fold-weight-layouts --split-input-file | FileCheck %s

// CHECK-LABEL: func.func @transpose_becomes_layout
func.func @transpose_becomes_layout() -> tensor<8x4xf32> {
  // CHECK: %[[W:.*]] = kiln.weight "w" from "m.safetensors"[64] {permutation = array<i64: 1, 0>} : tensor<8x4xf32>
  // CHECK-NOT: linalg.transpose
  // CHECK: return %[[W]]
  %w = kiln.weight "w" from "m.safetensors"[64] : tensor<4x8xf32>
  %e = tensor.empty() : tensor<8x4xf32>
  %t = linalg.transpose ins(%w : tensor<4x8xf32>) outs(%e : tensor<8x4xf32>) permutation = [1, 0]
  return %t : tensor<8x4xf32>
}

// -----

// Transposing a permuted weight composes the permutations: result dim i of the second
// transpose is the first's dim p[i], the stored tensor's q[p[i]].
// CHECK-LABEL: func.func @permutations_compose
func.func @permutations_compose() -> tensor<4x2x3xf32> {
  // CHECK: kiln.weight "w" from "m.safetensors"[0] {permutation = array<i64: 1, 0, 2>} : tensor<4x2x3xf32>
  %w = kiln.weight "w" from "m.safetensors"[0] {permutation = array<i64: 2, 1, 0>} : tensor<3x4x2xf32>
  %e = tensor.empty() : tensor<4x2x3xf32>
  %t = linalg.transpose ins(%w : tensor<3x4x2xf32>) outs(%e : tensor<4x2x3xf32>) permutation = [1, 2, 0]
  return %t : tensor<4x2x3xf32>
}

// -----

// The weight stays where it has other readers; only the transposed read moves.
// CHECK-LABEL: func.func @other_readers_keep_the_weight
func.func @other_readers_keep_the_weight() -> (tensor<4x8xf32>, tensor<8x4xf32>) {
  // CHECK-DAG: %[[W:.*]] = kiln.weight "w" from "m.safetensors"[0] : tensor<4x8xf32>
  // CHECK-DAG: %[[T:.*]] = kiln.weight "w" from "m.safetensors"[0] {permutation = array<i64: 1, 0>} : tensor<8x4xf32>
  // CHECK: return %[[W]], %[[T]]
  %w = kiln.weight "w" from "m.safetensors"[0] : tensor<4x8xf32>
  %e = tensor.empty() : tensor<8x4xf32>
  %t = linalg.transpose ins(%w : tensor<4x8xf32>) outs(%e : tensor<8x4xf32>) permutation = [1, 0]
  return %w, %t : tensor<4x8xf32>, tensor<8x4xf32>
}

// -----

// Packed weights and values that are not weights are left alone.
// CHECK-LABEL: func.func @packed_and_activations_stay
func.func @packed_and_activations_stay(%x: tensor<4x8xf32>) -> (tensor<8x4xf32>, tensor<64x32x!kiln.quant<q4_0>>) {
  // CHECK: linalg.transpose ins(%{{.*}} : tensor<4x8xf32>)
  %e = tensor.empty() : tensor<8x4xf32>
  %t = linalg.transpose ins(%x : tensor<4x8xf32>) outs(%e : tensor<8x4xf32>) permutation = [1, 0]
  // CHECK: linalg.transpose ins(%{{.*}} : tensor<32x64x!kiln.quant<q4_0>>)
  %q = kiln.weight "q" from "m.gguf"[0] : tensor<32x64x!kiln.quant<q4_0>>
  %qe = tensor.empty() : tensor<64x32x!kiln.quant<q4_0>>
  %qt = linalg.transpose ins(%q : tensor<32x64x!kiln.quant<q4_0>>) outs(%qe : tensor<64x32x!kiln.quant<q4_0>>) permutation = [1, 0]
  return %t, %qt : tensor<8x4xf32>, tensor<64x32x!kiln.quant<q4_0>>
}
