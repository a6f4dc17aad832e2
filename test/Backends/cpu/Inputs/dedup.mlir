// Kernels keyed by content: h = x + x @ w1 and y = h + h @ w2 are one kernel (weights
// and activations alike are its arguments), z = v + v @ w3 differs from it only in
// shape, and x * 2 and x * 3 differ only in a constant. The test writes the weights.
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @main(%x: tensor<4x8xf32> {kiln.name = "x"}, %v: tensor<2x8xf32> {kiln.name = "v"})
    -> (tensor<4x8xf32> {kiln.name = "y"}, tensor<2x8xf32> {kiln.name = "z"},
        tensor<4x8xf32> {kiln.name = "twice"}, tensor<4x8xf32> {kiln.name = "thrice"}) {
  %w1 = kiln.weight "w1" from "dedup.weights"[0] : tensor<8x8xf32>
  %w2 = kiln.weight "w2" from "dedup.weights"[256] : tensor<8x8xf32>
  %w3 = kiln.weight "w3" from "dedup.weights"[512] : tensor<8x8xf32>
  %h = linalg.matmul ins(%x, %w1 : tensor<4x8xf32>, tensor<8x8xf32>) outs(%x : tensor<4x8xf32>) -> tensor<4x8xf32>
  %y = linalg.matmul ins(%h, %w2 : tensor<4x8xf32>, tensor<8x8xf32>) outs(%h : tensor<4x8xf32>) -> tensor<4x8xf32>
  %z = linalg.matmul ins(%v, %w3 : tensor<2x8xf32>, tensor<8x8xf32>) outs(%v : tensor<2x8xf32>) -> tensor<2x8xf32>
  %e = tensor.empty() : tensor<4x8xf32>
  %twice = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %c = arith.constant 2.0 : f32
    %m = arith.mulf %a, %c : f32
    linalg.yield %m : f32
  } -> tensor<4x8xf32>
  %thrice = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %c = arith.constant 3.0 : f32
    %m = arith.mulf %a, %c : f32
    linalg.yield %m : f32
  } -> tensor<4x8xf32>
  return %y, %z, %twice, %thrice : tensor<4x8xf32>, tensor<2x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
}
