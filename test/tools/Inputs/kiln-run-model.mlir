// kiln-run's end-to-end model: y = relu(a @ b + bias), row_sum = the row sums of a, and
// mask_plus_one = mask + 1 on i8 (wrapping), which the test feeds from uint8 data.
func.func @main(%a: tensor<2x3xf32> {kiln.name = "a"}, %b: tensor<3x4xf32> {kiln.name = "b"},
                %bias: tensor<4xf32> {kiln.name = "bias"}, %mask: tensor<4xi8> {kiln.name = "mask"})
    -> (tensor<2x4xf32> {kiln.name = "y"}, tensor<2xf32> {kiln.name = "row_sum"},
        tensor<4xi8> {kiln.name = "mask_plus_one"}) {
  %zero = arith.constant 0.0 : f32
  %one = arith.constant 1 : i8
  %empty = tensor.empty() : tensor<2x4xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<2x4xf32>) -> tensor<2x4xf32>
  %ab = linalg.matmul ins(%a, %b : tensor<2x3xf32>, tensor<3x4xf32>)
                      outs(%acc : tensor<2x4xf32>) -> tensor<2x4xf32>
  %y = linalg.generic {
      indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>,
                       affine_map<(i, j) -> (i, j)>],
      iterator_types = ["parallel", "parallel"]}
      ins(%ab, %bias : tensor<2x4xf32>, tensor<4xf32>) outs(%empty : tensor<2x4xf32>) {
  ^bb0(%x: f32, %c: f32, %unused: f32):
    %sum = arith.addf %x, %c : f32
    %relu = arith.maximumf %sum, %zero : f32
    linalg.yield %relu : f32
  } -> tensor<2x4xf32>
  %rows = tensor.empty() : tensor<2xf32>
  %rowsZero = linalg.fill ins(%zero : f32) outs(%rows : tensor<2xf32>) -> tensor<2xf32>
  %rowSum = linalg.generic {
      indexing_maps = [affine_map<(i, k) -> (i, k)>, affine_map<(i, k) -> (i)>],
      iterator_types = ["parallel", "reduction"]}
      ins(%a : tensor<2x3xf32>) outs(%rowsZero : tensor<2xf32>) {
  ^bb0(%x: f32, %partial: f32):
    %sum = arith.addf %x, %partial : f32
    linalg.yield %sum : f32
  } -> tensor<2xf32>
  %masks = tensor.empty() : tensor<4xi8>
  %maskPlusOne = linalg.generic {
      indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>],
      iterator_types = ["parallel"]}
      ins(%mask : tensor<4xi8>) outs(%masks : tensor<4xi8>) {
  ^bb0(%m: i8, %unused: i8):
    %next = arith.addi %m, %one : i8
    linalg.yield %next : i8
  } -> tensor<4xi8>
  return %y, %rowSum, %maskPlusOne : tensor<2x4xf32>, tensor<2xf32>, tensor<4xi8>
}
