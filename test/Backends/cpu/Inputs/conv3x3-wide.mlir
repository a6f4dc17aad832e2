// A 3x3 convolution as the ONNX importer writes it, shaped like the first layers of a
// convnet: 16 input and 16 output channels, 4 rows of 64 pixels.
#in = affine_map<(n, o, y, x, c, ky, kx) -> (n, c, y + ky, x + kx)>
#w = affine_map<(n, o, y, x, c, ky, kx) -> (o, c, ky, kx)>
#out = affine_map<(n, o, y, x, c, ky, kx) -> (n, o, y, x)>
func.func @main(%x: tensor<1x16x4x64xf32> {kiln.name = "x"}, %w: tensor<16x16x3x3xf32> {kiln.name = "w"})
    -> (tensor<1x16x4x64xf32> {kiln.name = "y"}) {
  %zero = arith.constant 0.0 : f32
  %padded = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%a: index, %b: index, %c: index, %d: index):
    tensor.yield %zero : f32
  } : tensor<1x16x4x64xf32> to tensor<1x16x6x66xf32>
  %empty = tensor.empty() : tensor<1x16x4x64xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<1x16x4x64xf32>) -> tensor<1x16x4x64xf32>
  %y = linalg.generic {indexing_maps = [#in, #w, #out],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel",
                                         "reduction", "reduction", "reduction"]}
      ins(%padded, %w : tensor<1x16x6x66xf32>, tensor<16x16x3x3xf32>) outs(%acc : tensor<1x16x4x64xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %m, %o : f32
    linalg.yield %s : f32
  } -> tensor<1x16x4x64xf32>
  return %y : tensor<1x16x4x64xf32>
}
