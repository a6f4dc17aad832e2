// A Mamba decode step's selective scan: one row, 1024 channels, 16 state indices.
func.func @main(%x: tensor<1x1024xf32> {kiln.name = "x"}, %dt: tensor<1x1024xf32> {kiln.name = "dt"}, %a: tensor<1024x16xf32> {kiln.name = "a"},
                %b: tensor<1x16xf32> {kiln.name = "b"}, %c: tensor<1x16xf32> {kiln.name = "c"}, %h: tensor<1024x16xf32> {kiln.name = "h"})
    -> (tensor<1x1024xf32> {kiln.name = "y"}, tensor<1024x16xf32> {kiln.name = "h2"}) {
  %y, %h2 = kiln.selective_scan %x, %dt, %a, %b, %c, %h : tensor<1x1024xf32>, tensor<1x1024xf32>, tensor<1024x16xf32>, tensor<1x16xf32>, tensor<1x16xf32>, tensor<1024x16xf32>
  return %y, %h2 : tensor<1x1024xf32>, tensor<1024x16xf32>
}
