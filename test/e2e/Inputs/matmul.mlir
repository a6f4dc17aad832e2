// y = relu(x @ w): one 64x256x256 product, large enough that its kernel runs in
// parallel over Halide's thread pool (for tests of concurrent sessions).
func.func @forward(%x: tensor<64x256xf32> {kiln.name = "x"}, %w: tensor<256x256xf32> {kiln.name = "w"}) -> (tensor<64x256xf32> {kiln.name = "y"}) {
  %zero = arith.constant 0.0 : f32
  %empty = tensor.empty() : tensor<64x256xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<64x256xf32>) -> tensor<64x256xf32>
  %xw = linalg.matmul ins(%x, %w : tensor<64x256xf32>, tensor<256x256xf32>)
                      outs(%acc : tensor<64x256xf32>) -> tensor<64x256xf32>
  %y = linalg.generic {
      indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
      iterator_types = ["parallel", "parallel"]}
      ins(%xw : tensor<64x256xf32>) outs(%empty : tensor<64x256xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.maximumf %a, %zero : f32
    linalg.yield %r : f32
  } -> tensor<64x256xf32>
  return %y : tensor<64x256xf32>
}
