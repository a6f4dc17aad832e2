// Products with a Q4_0 weight of 32 rows, which kiln-interleave-weights stores as
// q4_0x16: a one-row product (a decode step) and a 5-row one (a prefill batch).
// Input of interleaved.test (halide-stmt only: the weights file is never read).
#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
func.func @main(%x: tensor<1x64xf32> {kiln.name = "x"}, %x5: tensor<5x64xf32> {kiln.name = "x5"})
    -> (tensor<1x32xf32> {kiln.name = "y"}, tensor<5x32xf32> {kiln.name = "y5"}) {
  %zero = arith.constant 0.0 : f32
  %w = kiln.weight "w" from "interleaved.bin"[0] : tensor<32x64x!kiln.quant<q4_0>>
  %wf = kiln.dequantize %w : tensor<32x64x!kiln.quant<q4_0>>
  %e = tensor.empty() : tensor<1x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<1x32xf32>) -> tensor<1x32xf32>
  %y = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %wf : tensor<1x64xf32>, tensor<32x64xf32>) outs(%acc : tensor<1x32xf32>) -> tensor<1x32xf32>
  %w5 = kiln.weight "w5" from "interleaved.bin"[0] : tensor<32x64x!kiln.quant<q4_0>>
  %wf5 = kiln.dequantize %w5 : tensor<32x64x!kiln.quant<q4_0>>
  %e5 = tensor.empty() : tensor<5x32xf32>
  %acc5 = linalg.fill ins(%zero : f32) outs(%e5 : tensor<5x32xf32>) -> tensor<5x32xf32>
  %y5 = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x5, %wf5 : tensor<5x64xf32>, tensor<32x64xf32>) outs(%acc5 : tensor<5x32xf32>) -> tensor<5x32xf32>
  return %y, %y5 : tensor<1x32xf32>, tensor<5x32xf32>
}
