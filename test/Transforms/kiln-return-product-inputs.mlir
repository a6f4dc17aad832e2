// kiln-return-product-inputs: the activations of each product with a float weight
// become an extra result named "<weight>.input" (AWQ's calibration artifact).
// RUN: kiln-opt %s --kiln-return-product-inputs --split-input-file | FileCheck %s

// A [K, N] weight (ONNX MatMul) and an [N, K] one through a widening copy; the
// weight's name made a file name; the function's own result stays first.
// CHECK-LABEL: func.func @exposes_each_products_activations
// CHECK-SAME: (%[[X:[^:]*]]: tensor<4x32xf32>)
// CHECK-SAME: -> (tensor<4x16xf32> {kiln.name = "y"}, tensor<4x32xf32> {kiln.name = "_w1_0.input"}, tensor<4x16xf32> {kiln.name = "w2.input"})
// CHECK: %[[H:.*]] = linalg.matmul
// CHECK: return %{{.*}}, %[[X]], %[[H]] : tensor<4x16xf32>, tensor<4x32xf32>, tensor<4x16xf32>
func.func @exposes_each_products_activations(%x: tensor<4x32xf32>) -> (tensor<4x16xf32> {kiln.name = "y"}) {
  %w1 = kiln.weight "/w1:0" from "m.onnx"[0] : tensor<32x16xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %h = linalg.matmul ins(%x, %w1 : tensor<4x32xf32>, tensor<32x16xf32>) outs(%acc : tensor<4x16xf32>) -> tensor<4x16xf32>
  %w2h = kiln.weight "w2" from "m.safetensors"[0] : tensor<16x16xf16>
  %we = tensor.empty() : tensor<16x16xf32>
  %w2 = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%w2h : tensor<16x16xf16>) outs(%we : tensor<16x16xf32>) {
  ^bb0(%a: f16, %o: f32):
    %f = arith.extf %a : f16 to f32
    linalg.yield %f : f32
  } -> tensor<16x16xf32>
  %y = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>] ins(%h, %w2 : tensor<4x16xf32>, tensor<16x16xf32>) outs(%acc : tensor<4x16xf32>) -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// -----

// A weight two products read is not exposed (which activations would AWQ use?);
// neither is a product without a weight.
// CHECK-LABEL: func.func @weight_read_twice_is_not_exposed
// CHECK-SAME: -> (tensor<4x16xf32>, tensor<4x16xf32>)
// CHECK-NOT: kiln.name
func.func @weight_read_twice_is_not_exposed(%x: tensor<4x32xf32>, %z: tensor<4x32xf32>, %v: tensor<32x16xf32>) -> (tensor<4x16xf32>, tensor<4x16xf32>) {
  %w = kiln.weight "tied" from "m.onnx"[0] : tensor<32x16xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %a = linalg.matmul ins(%x, %w : tensor<4x32xf32>, tensor<32x16xf32>) outs(%acc : tensor<4x16xf32>) -> tensor<4x16xf32>
  %b = linalg.matmul ins(%z, %w : tensor<4x32xf32>, tensor<32x16xf32>) outs(%a : tensor<4x16xf32>) -> tensor<4x16xf32>
  %c = linalg.matmul ins(%z, %v : tensor<4x32xf32>, tensor<32x16xf32>) outs(%acc : tensor<4x16xf32>) -> tensor<4x16xf32>
  return %b, %c : tensor<4x16xf32>, tensor<4x16xf32>
}
