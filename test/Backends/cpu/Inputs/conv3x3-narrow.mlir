// A 3x3 convolution (NCHW input, OIHW weights, padding 1) as the ONNX importer writes
// it: 64 input and 64 output channels, 28x28 (the size of a convnet's last layers, whose
// rows are not a whole number of 16-column tiles).
#in = affine_map<(n, o, y, x, c, ky, kx) -> (n, c, y + ky, x + kx)>
#w = affine_map<(n, o, y, x, c, ky, kx) -> (o, c, ky, kx)>
#out = affine_map<(n, o, y, x, c, ky, kx) -> (n, o, y, x)>
func.func @main(%x: tensor<1x64x28x28xf32> {kiln.name = "x"}, %w: tensor<64x64x3x3xf32> {kiln.name = "w"})
    -> (tensor<1x64x28x28xf32> {kiln.name = "y"}) {
  %zero = arith.constant 0.0 : f32
  %padded = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%a: index, %b: index, %c: index, %d: index):
    tensor.yield %zero : f32
  } : tensor<1x64x28x28xf32> to tensor<1x64x30x30xf32>
  %empty = tensor.empty() : tensor<1x64x28x28xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<1x64x28x28xf32>) -> tensor<1x64x28x28xf32>
  %y = linalg.generic {indexing_maps = [#in, #w, #out],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel",
                                         "reduction", "reduction", "reduction"]}
      ins(%padded, %w : tensor<1x64x30x30xf32>, tensor<64x64x3x3xf32>) outs(%acc : tensor<1x64x28x28xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %m, %o : f32
    linalg.yield %s : f32
  } -> tensor<1x64x28x28xf32>
  return %y : tensor<1x64x28x28xf32>
}
