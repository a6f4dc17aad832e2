// Two one-row products of the same shape over f16 weights (f16-weights.test): one
// whose values are all finite, one holding an infinity and a NaN.
#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
func.func @main(%x: tensor<1x64xf32> {kiln.name = "x"})
    -> (tensor<1x4xf32> {kiln.name = "finite"}, tensor<1x4xf32> {kiln.name = "special"}) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x4xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<1x4xf32>) -> tensor<1x4xf32>
  %wf = kiln.weight "finite" from "w.bin"[0] : tensor<4x64xf16>
  %f = arith.extf %wf : tensor<4x64xf16> to tensor<4x64xf32>
  %yf = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %f : tensor<1x64xf32>, tensor<4x64xf32>) outs(%acc : tensor<1x4xf32>) -> tensor<1x4xf32>
  %ws = kiln.weight "special" from "w.bin"[512] : tensor<4x64xf16>
  %s = arith.extf %ws : tensor<4x64xf16> to tensor<4x64xf32>
  %ys = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %s : tensor<1x64xf32>, tensor<4x64xf32>) outs(%acc : tensor<1x4xf32>) -> tensor<1x4xf32>
  return %yf, %ys : tensor<1x4xf32>, tensor<1x4xf32>
}
