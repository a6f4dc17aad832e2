// RoPE over 7 rows of 4 heads of 64 (norm mode).
func.func @main(%x: tensor<1x7x4x64xf32> {kiln.name = "x"}, %pos: tensor<7xi32> {kiln.name = "pos"})
    -> (tensor<1x7x4x64xf32> {kiln.name = "y"}) {
  %0 = kiln.rope %x, %pos {theta = 10000.0} : tensor<1x7x4x64xf32>, tensor<7xi32>
  return %0 : tensor<1x7x4x64xf32>
}
