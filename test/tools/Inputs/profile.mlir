// kiln-run --profile's model (test/tools/kiln-run-profile.test): an embedding lookup,
// an RMS norm, two projections of the same shape (one kernel, two dispatches) and
// attention over them, so that the profile shows each estimate the compiler makes.
func.func @main(%ids: tensor<4xi32> {kiln.name = "ids"},
                %table: tensor<16x8xf32> {kiln.name = "table"},
                %norm: tensor<8xf32> {kiln.name = "norm"},
                %wq: tensor<8x8xf32> {kiln.name = "wq"},
                %wk: tensor<8x8xf32> {kiln.name = "wk"})
    -> (tensor<4x2x4xf32> {kiln.name = "y"}) {
  %zero = arith.constant 0.0 : f32
  %x = kiln.gather %table[%ids] : tensor<16x8xf32>, tensor<4xi32>
  %n = kiln.rms_norm %x, %norm : tensor<4x8xf32>, tensor<8xf32>
  %empty = tensor.empty() : tensor<4x8xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<4x8xf32>) -> tensor<4x8xf32>
  %q = linalg.matmul ins(%n, %wq : tensor<4x8xf32>, tensor<8x8xf32>)
                     outs(%acc : tensor<4x8xf32>) -> tensor<4x8xf32>
  %k = linalg.matmul ins(%n, %wk : tensor<4x8xf32>, tensor<8x8xf32>)
                     outs(%acc : tensor<4x8xf32>) -> tensor<4x8xf32>
  %qh = tensor.expand_shape %q [[0], [1, 2]] output_shape [4, 2, 4]
      : tensor<4x8xf32> into tensor<4x2x4xf32>
  %kh = tensor.expand_shape %k [[0], [1, 2]] output_shape [4, 2, 4]
      : tensor<4x8xf32> into tensor<4x2x4xf32>
  %y = kiln.attention %qh, %kh, %kh {causal}
      : tensor<4x2x4xf32>, tensor<4x2x4xf32>, tensor<4x2x4xf32>
  return %y : tensor<4x2x4xf32>
}
