// kiln-awq-scale's errors name the weight and the calibration file at fault.
// RUN: kiln-opt %s --kiln-awq-scale="activations=%S/Inputs/awq model-dir=%S/Inputs/awq" --split-input-file -verify-diagnostics

#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>

func.func @no_activations_for_the_weight(%x: tensor<4x32xf32>) -> tensor<4x32xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x32xf32>) -> tensor<4x32xf32>
  // expected-error @below {{kiln-awq-scale: no calibration activations for 'missing.weight'}}
  %w = kiln.weight "missing.weight" from "weights.bin"[0] {source_scheme = "f32"} : tensor<32x32x!kiln.quant<q4_0>>
  %d = kiln.dequantize %w : tensor<32x32x!kiln.quant<q4_0>>
  %y = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %d : tensor<4x32xf32>, tensor<32x32xf32>) outs(%acc : tensor<4x32xf32>) -> tensor<4x32xf32>
  return %y : tensor<4x32xf32>
}

// -----

#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>

func.func @activations_of_another_width(%x: tensor<4x32xf32>) -> tensor<4x32xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x32xf32>) -> tensor<4x32xf32>
  // expected-error @below {{short.weight.input.npy' should hold f32 rows of 32 values (the weight's K)}}
  %w = kiln.weight "short.weight" from "weights.bin"[0] {source_scheme = "f32"} : tensor<32x32x!kiln.quant<q4_0>>
  %d = kiln.dequantize %w : tensor<32x32x!kiln.quant<q4_0>>
  %y = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %d : tensor<4x32xf32>, tensor<32x32xf32>) outs(%acc : tensor<4x32xf32>) -> tensor<4x32xf32>
  return %y : tensor<4x32xf32>
}

// -----

#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>

func.func @weight_bytes_past_the_file(%x: tensor<4x32xf32>) -> tensor<4x32xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x32xf32>) -> tensor<4x32xf32>
  // expected-error @below {{kiln-awq-scale: cannot read 'a.weight' from}}
  %w = kiln.weight "a.weight" from "weights.bin"[12000] {source_scheme = "f32"} : tensor<32x32x!kiln.quant<q4_0>>
  %d = kiln.dequantize %w : tensor<32x32x!kiln.quant<q4_0>>
  %y = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %d : tensor<4x32xf32>, tensor<32x32xf32>) outs(%acc : tensor<4x32xf32>) -> tensor<4x32xf32>
  return %y : tensor<4x32xf32>
}
