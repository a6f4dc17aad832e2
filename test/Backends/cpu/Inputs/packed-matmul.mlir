// Matmuls reading packed Q4_K weights: a 16-row prefill and a one-row decode step.
// (72 rows, not a multiple of 16: the weights keep ggml's row layout; kiln-interleave-weights
// would store 64 as q4_kx16, whose products interleaved.test checks.)
#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
func.func @main(%x: tensor<16x512xf32> {kiln.name = "x"}, %t: tensor<1x512xf32> {kiln.name = "t"})
    -> (tensor<16x72xf32> {kiln.name = "y"}, tensor<1x72xf32> {kiln.name = "z"}) {
  %w = kiln.weight "w" from "packed.bin"[0] : tensor<72x512x!kiln.quant<q4_k>>
  %wf = kiln.dequantize %w : tensor<72x512x!kiln.quant<q4_k>>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<16x72xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<16x72xf32>) -> tensor<16x72xf32>
  %y = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %wf : tensor<16x512xf32>, tensor<72x512xf32>) outs(%acc : tensor<16x72xf32>) -> tensor<16x72xf32>
  %e1 = tensor.empty() : tensor<1x72xf32>
  %acc1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<1x72xf32>) -> tensor<1x72xf32>
  %v = kiln.weight "v" from "packed.bin"[0] : tensor<72x512x!kiln.quant<q4_k>>
  %vf = kiln.dequantize %v : tensor<72x512x!kiln.quant<q4_k>>
  %z = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%t, %vf : tensor<1x512xf32>, tensor<72x512xf32>) outs(%acc1 : tensor<1x72xf32>) -> tensor<1x72xf32>
  return %y, %z : tensor<16x72xf32>, tensor<1x72xf32>
}
