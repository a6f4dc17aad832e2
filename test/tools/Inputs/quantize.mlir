// A 64 -> 32 linear layer whose [K, N] f32 weight is the 8192 bytes of w.bin.
func.func @main(%x: tensor<2x64xf32>) -> tensor<2x32xf32> {
  %w = kiln.weight "fc.weight" from "w.bin"[0] : tensor<64x32xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<2x32xf32>) -> tensor<2x32xf32>
  %y = linalg.matmul ins(%x, %w : tensor<2x64xf32>, tensor<64x32xf32>) outs(%acc : tensor<2x32xf32>) -> tensor<2x32xf32>
  return %y : tensor<2x32xf32>
}
