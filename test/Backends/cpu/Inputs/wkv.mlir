// RWKV-6's time-mix recurrence over 8 rows, 4 heads of 16: the output and the new state.
func.func @main(%r: tensor<8x4x16xf32> {kiln.name = "r"}, %k: tensor<8x4x16xf32> {kiln.name = "k"},
                %v: tensor<8x4x16xf32> {kiln.name = "v"}, %w: tensor<8x4x16xf32> {kiln.name = "w"},
                %u: tensor<4x16xf32> {kiln.name = "u"}, %s: tensor<4x16x16xf32> {kiln.name = "s"},
                %n: tensor<1xi64> {kiln.name = "n"})
    -> (tensor<8x4x16xf32> {kiln.name = "y"}, tensor<4x16x16xf32> {kiln.name = "s2"}) {
  %y, %s2 = kiln.wkv %r, %k, %v, %w, %u, %s length(%n : tensor<1xi64>) : tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<4x16xf32>, tensor<4x16x16xf32>
  return %y, %s2 : tensor<8x4x16xf32>, tensor<4x16x16xf32>
}
