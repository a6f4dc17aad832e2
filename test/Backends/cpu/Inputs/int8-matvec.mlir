// One-row and 4-row products with Q5_0 weights (72 rows: not a multiple of 16, so
// kiln-interleave-weights leaves them in ggml's layout). Input of int8-matvec.test (halide-stmt
// only: the weights file is never read).
#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
func.func @main(%x: tensor<1x512xf32> {kiln.name = "x"}, %x4: tensor<4x512xf32> {kiln.name = "x4"})
    -> (tensor<1x72xf32> {kiln.name = "y"}, tensor<4x72xf32> {kiln.name = "y4"}) {
  %w = kiln.weight "w" from "int8.bin"[0] : tensor<72x512x!kiln.quant<q5_0>>
  %wf = kiln.dequantize %w : tensor<72x512x!kiln.quant<q5_0>>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x72xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<1x72xf32>) -> tensor<1x72xf32>
  %y = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %wf : tensor<1x512xf32>, tensor<72x512xf32>) outs(%acc : tensor<1x72xf32>) -> tensor<1x72xf32>
  %w4 = kiln.weight "w4" from "int8.bin"[0] : tensor<72x512x!kiln.quant<q5_0>>
  %wf4 = kiln.dequantize %w4 : tensor<72x512x!kiln.quant<q5_0>>
  %e4 = tensor.empty() : tensor<4x72xf32>
  %acc4 = linalg.fill ins(%zero : f32) outs(%e4 : tensor<4x72xf32>) -> tensor<4x72xf32>
  %y4 = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x4, %wf4 : tensor<4x512xf32>, tensor<72x512xf32>) outs(%acc4 : tensor<4x72xf32>) -> tensor<4x72xf32>
  return %y, %y4 : tensor<1x72xf32>, tensor<4x72xf32>
}
