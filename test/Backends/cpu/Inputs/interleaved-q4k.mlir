// Products with Q4_K weights of 32 rows, which kiln-interleave-weights stores as q4_kx16:
// a one-row decode step and a 5-row prefill.
#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
func.func @main(%t: tensor<1x512xf32> {kiln.name = "t"}, %x: tensor<5x512xf32> {kiln.name = "x"})
    -> (tensor<1x32xf32> {kiln.name = "z"}, tensor<5x32xf32> {kiln.name = "y"}) {
  %w = kiln.weight "w" from "packed.bin"[0] : tensor<32x512x!kiln.quant<q4_k>>
  %wf = kiln.dequantize %w : tensor<32x512x!kiln.quant<q4_k>>
  %zero = arith.constant 0.0 : f32
  %e1 = tensor.empty() : tensor<1x32xf32>
  %acc1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<1x32xf32>) -> tensor<1x32xf32>
  %z = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%t, %wf : tensor<1x512xf32>, tensor<32x512xf32>) outs(%acc1 : tensor<1x32xf32>) -> tensor<1x32xf32>
  %e = tensor.empty() : tensor<5x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<5x32xf32>) -> tensor<5x32xf32>
  %v = kiln.weight "v" from "packed.bin"[0] : tensor<32x512x!kiln.quant<q4_k>>
  %vf = kiln.dequantize %v : tensor<32x512x!kiln.quant<q4_k>>
  %y = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %vf : tensor<5x512xf32>, tensor<32x512xf32>) outs(%acc : tensor<5x32xf32>) -> tensor<5x32xf32>
  return %z, %y : tensor<1x32xf32>, tensor<5x32xf32>
}
