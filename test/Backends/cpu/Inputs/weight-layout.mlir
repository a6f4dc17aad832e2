// A 3-D weight read transposed: kiln-fold-weight-layouts stores it permuted.
func.func @main(%x: tensor<4x2x3xf32> {kiln.name = "x"}) -> (tensor<4x2x3xf32> {kiln.name = "y"}) {
  %w = kiln.weight "w" from "w.bin"[16] : tensor<2x3x4xf32>
  %e = tensor.empty() : tensor<4x2x3xf32>
  %t = linalg.transpose ins(%w : tensor<2x3x4xf32>) outs(%e : tensor<4x2x3xf32>) permutation = [2, 0, 1]
  %y = arith.addf %x, %t : tensor<4x2x3xf32>
  return %y : tensor<4x2x3xf32>
}
