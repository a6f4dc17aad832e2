// A 64x512x512 matmul: with one column per vector in tiles of three vectors, its
// 128-column panels (256 KiB of B) split no tile evenly, and Halide 14's kernel reads
// past B's last column (a bounds error at run time). CandidateMeasurementTest uses it
// as a real candidate that fails.
func.func @main(%a: tensor<64x512xf32>, %b: tensor<512x512xf32>) -> tensor<64x512xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<64x512xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<64x512xf32>) -> tensor<64x512xf32>
  %c = linalg.matmul ins(%a, %b : tensor<64x512xf32>, tensor<512x512xf32>) outs(%f : tensor<64x512xf32>) -> tensor<64x512xf32>
  return %c : tensor<64x512xf32>
}
