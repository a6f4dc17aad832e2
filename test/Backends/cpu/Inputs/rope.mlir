// A named op without a CPU kernel yet.
func.func @main(%x: tensor<8x4x16xf32>, %p: tensor<8xi64>) -> tensor<8x4x16xf32> {
  %0 = kiln.rope %x, %p {theta = 10000.0} : tensor<8x4x16xf32>, tensor<8xi64>
  return %0 : tensor<8x4x16xf32>
}
