// An op the CPU backend has no kernel for yet.
func.func @main(%x: tensor<2x4xf32>, %y: tensor<8x4xf32>) -> tensor<8x4xf32> {
  %0 = tensor.insert_slice %x into %y[3, 0] [2, 4] [1, 1] : tensor<2x4xf32> into tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}
