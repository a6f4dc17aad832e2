// RMSNorm, RoPE and grouped-query attention with packed Q4_0 projections: the named-op
// kernels of the CPU backend. The weights come from a file the test writes.
func.func @main(%x: tensor<4x32xf32> {kiln.name = "x"}, %pos: tensor<4xi64> {kiln.name = "positions"}) -> (tensor<4x2x16xf32> {kiln.name = "y"}) {
  %norm = kiln.weight "norm" from "block.weights"[0] : tensor<32xf32>
  %wq = kiln.weight "wq" from "block.weights"[128] : tensor<32x32x!kiln.quant<q4_0>>
  %h = kiln.rms_norm %x, %norm : tensor<4x32xf32>, tensor<32xf32>
  %w = kiln.dequantize %wq : tensor<32x32x!kiln.quant<q4_0>>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x32xf32>) -> tensor<4x32xf32>
  %q = linalg.matmul ins(%h, %w : tensor<4x32xf32>, tensor<32x32xf32>) outs(%acc : tensor<4x32xf32>) -> tensor<4x32xf32>
  %qh = tensor.expand_shape %q [[0], [1, 2]] output_shape [4, 2, 16] : tensor<4x32xf32> into tensor<4x2x16xf32>
  %qr = kiln.rope %qh, %pos {theta = 10000.0} : tensor<4x2x16xf32>, tensor<4xi64>
  %a = kiln.attention %qr, %qr, %qr {causal} : tensor<4x2x16xf32>, tensor<4x2x16xf32>, tensor<4x2x16xf32>
  return %a : tensor<4x2x16xf32>
}
