// A float matmul with a bias + ReLU epilogue, big enough for column panels (64 rows,
// K 256, 384 columns).
func.func @main(%x: tensor<64x256xf32> {kiln.name = "x"}, %w: tensor<256x384xf32> {kiln.name = "w"},
                %b: tensor<384xf32> {kiln.name = "b"}) -> (tensor<64x384xf32> {kiln.name = "y"}) {
  %zero = arith.constant 0.0 : f32
  %empty = tensor.empty() : tensor<64x384xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<64x384xf32>) -> tensor<64x384xf32>
  %mm = linalg.matmul ins(%x, %w : tensor<64x256xf32>, tensor<256x384xf32>)
                      outs(%acc : tensor<64x384xf32>) -> tensor<64x384xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(m, n) -> (m, n)>, affine_map<(m, n) -> (n)>,
                                        affine_map<(m, n) -> (m, n)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%mm, %b : tensor<64x384xf32>, tensor<384xf32>) outs(%empty : tensor<64x384xf32>) {
  ^bb0(%p: f32, %q: f32, %out: f32):
    %s = arith.addf %p, %q : f32
    %r = arith.maximumf %s, %zero : f32
    linalg.yield %r : f32
  } -> tensor<64x384xf32>
  return %y : tensor<64x384xf32>
}
