// kiln-awq-scale: products of packed float weights whose calibration activations have
// an outlier channel get AWQ scales (input_scale on the weights) and their activations
// are divided by them: in the RMSNorm scale that produces them when that is exact,
// else by an explicit multiply. Inputs/awq: three random [32, 32] f32 weights in
// weights.bin; a/b/c activations with channel 3 fifty times the others; uniform
// activations (every |x| = 1) for which no scaling can help.
// RUN: kiln-opt %s --kiln-awq-scale="activations=%S/Inputs/awq model-dir=%S/Inputs/awq" --split-input-file | FileCheck %s
// RUN: kiln-opt %s --kiln-awq-scale="activations=%S/Inputs/awq model-dir=%S/Inputs/awq steps=0" --split-input-file | FileCheck %s --check-prefix=OFF

#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>

// q and k read the same normed activations: one search for both, 1/s folded into the
// norm's f32 scale (read by that norm only).
// CHECK-LABEL: func.func @shared_activations_fold_into_the_norm
// CHECK: kiln.weight "norm.weight" from "weights.bin"[0] {input_scale = array<f32:
// CHECK: kiln.weight "a.weight" from "weights.bin"[0] {input_scale = array<f32: {{.*}}>, source_scheme = "f32"}
// CHECK: kiln.weight "b.weight" from "weights.bin"[4096] {input_scale = array<f32: {{.*}}>, source_scheme = "f32"}
// CHECK-NOT: arith.mulf
// OFF-LABEL: func.func @shared_activations_fold_into_the_norm
// OFF-NOT: input_scale
func.func @shared_activations_fold_into_the_norm(%x: tensor<4x32xf32>) -> (tensor<4x32xf32>, tensor<4x32xf32>) {
  %g = kiln.weight "norm.weight" from "weights.bin"[0] : tensor<32xf32>
  %h = kiln.rms_norm %x, %g {epsilon = 1.0e-5 : f32} : tensor<4x32xf32>, tensor<32xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x32xf32>) -> tensor<4x32xf32>
  %wa = kiln.weight "a.weight" from "weights.bin"[0] {source_scheme = "f32"} : tensor<32x32x!kiln.quant<q4_0>>
  %da = kiln.dequantize %wa : tensor<32x32x!kiln.quant<q4_0>>
  %ya = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%h, %da : tensor<4x32xf32>, tensor<32x32xf32>) outs(%acc : tensor<4x32xf32>) -> tensor<4x32xf32>
  %wb = kiln.weight "b.weight" from "weights.bin"[4096] {source_scheme = "f32"} : tensor<32x32x!kiln.quant<q4_0>>
  %db = kiln.dequantize %wb : tensor<32x32x!kiln.quant<q4_0>>
  %yb = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%h, %db : tensor<4x32xf32>, tensor<32x32xf32>) outs(%acc : tensor<4x32xf32>) -> tensor<4x32xf32>
  return %ya, %yb : tensor<4x32xf32>, tensor<4x32xf32>
}

// -----

#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>

// Activations no norm produces (a function argument, an attention output): the product
// reads x * (1/s), an elementwise multiply fusion joins to a neighbour.
// CHECK-LABEL: func.func @other_activations_get_an_explicit_multiply
// CHECK-SAME: (%[[X:.*]]: tensor<4x32xf32>)
// CHECK: %[[W:.*]] = kiln.weight "c.weight" from "weights.bin"[8192] {input_scale = array<f32: {{.*}}>, source_scheme = "f32"}
// CHECK: %[[INV:.*]] = arith.constant dense<{{.*}}> : tensor<32xf32>
// CHECK: %[[SCALED:.*]] = linalg.generic {{.*}} ins(%[[X]], %[[INV]] : tensor<4x32xf32>, tensor<32xf32>)
// CHECK: arith.mulf
// CHECK: linalg.matmul {{.*}} ins(%[[SCALED]], %{{.*}} : tensor<4x32xf32>, tensor<32x32xf32>)
// OFF-LABEL: func.func @other_activations_get_an_explicit_multiply
// OFF-NOT: arith.mulf
func.func @other_activations_get_an_explicit_multiply(%x: tensor<4x32xf32>) -> tensor<4x32xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x32xf32>) -> tensor<4x32xf32>
  %w = kiln.weight "c.weight" from "weights.bin"[8192] {source_scheme = "f32"} : tensor<32x32x!kiln.quant<q4_0>>
  %d = kiln.dequantize %w : tensor<32x32x!kiln.quant<q4_0>>
  %y = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %d : tensor<4x32xf32>, tensor<32x32xf32>) outs(%acc : tensor<4x32xf32>) -> tensor<4x32xf32>
  return %y : tensor<4x32xf32>
}

// -----

#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>

// Every channel equally large: every alpha gives the same scales (all 1), so the first,
// alpha = 0, wins and the product stays plain round-to-nearest.
// CHECK-LABEL: func.func @uniform_activations_stay_round_to_nearest
// CHECK-NOT: input_scale
// CHECK-NOT: arith.mulf
func.func @uniform_activations_stay_round_to_nearest(%x: tensor<4x32xf32>) -> tensor<4x32xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x32xf32>) -> tensor<4x32xf32>
  %w = kiln.weight "uniform.weight" from "weights.bin"[0] {source_scheme = "f32"} : tensor<32x32x!kiln.quant<q4_0>>
  %d = kiln.dequantize %w : tensor<32x32x!kiln.quant<q4_0>>
  %y = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %d : tensor<4x32xf32>, tensor<32x32xf32>) outs(%acc : tensor<4x32xf32>) -> tensor<4x32xf32>
  return %y : tensor<4x32xf32>
}

// -----

#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>

// A weight two products read (a tied weight): whose activations to use is ambiguous,
// so neither is scaled (kiln-return-product-inputs exposes none for it either).
// CHECK-LABEL: func.func @weight_read_twice_is_left_alone
// CHECK-NOT: input_scale
func.func @weight_read_twice_is_left_alone(%x: tensor<4x32xf32>, %z: tensor<4x32xf32>) -> (tensor<4x32xf32>, tensor<4x32xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x32xf32>) -> tensor<4x32xf32>
  %w = kiln.weight "a.weight" from "weights.bin"[0] {source_scheme = "f32"} : tensor<32x32x!kiln.quant<q4_0>>
  %d = kiln.dequantize %w : tensor<32x32x!kiln.quant<q4_0>>
  %y = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %d : tensor<4x32xf32>, tensor<32x32xf32>) outs(%acc : tensor<4x32xf32>) -> tensor<4x32xf32>
  %w2 = kiln.weight "a.weight" from "weights.bin"[0] {source_scheme = "f32"} : tensor<32x32x!kiln.quant<q4_0>>
  %d2 = kiln.dequantize %w2 : tensor<32x32x!kiln.quant<q4_0>>
  %y2 = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%z, %d2 : tensor<4x32xf32>, tensor<32x32xf32>) outs(%acc : tensor<4x32xf32>) -> tensor<4x32xf32>
  return %y, %y2 : tensor<4x32xf32>, tensor<4x32xf32>
}
