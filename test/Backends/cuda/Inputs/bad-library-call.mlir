// A dispatch whose kiln.library (written by hand, not by kiln-mark-library-products,
// which leaves this body alone: it subtracts) says the call reads 16x32 elements of A
// from an input of 8x32: the CUDA backend refuses it rather than let cuBLAS read past
// the buffer.
func.func @main(%x: tensor<8x32xf32> {kiln.name = "x"}, %w: tensor<32x64xf32> {kiln.name = "w"}) -> (tensor<16x64xf32> {kiln.name = "y"}) {
  %y = kiln.dispatch ins(%x, %w : tensor<8x32xf32>, tensor<32x64xf32>) -> tensor<16x64xf32>
      attributes {kiln.library = {function = "cublas.gemm", a = 0, b = 1, batch = 1, m = 16, n = 64, k = 32,
                                  a_batch_stride = 0, b_batch_stride = 0, transpose_b = false}} {
  ^bb0(%a: tensor<8x32xf32>, %b: tensor<32x64xf32>):
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<16x64xf32>
    %f = linalg.fill ins(%zero : f32) outs(%e : tensor<16x64xf32>) -> tensor<16x64xf32>
    %g = linalg.generic {indexing_maps = [affine_map<(m, n, k) -> (m floordiv 2, k)>, affine_map<(m, n, k) -> (k, n)>,
                                          affine_map<(m, n, k) -> (m, n)>],
                         iterator_types = ["parallel", "parallel", "reduction"]}
        ins(%a, %b : tensor<8x32xf32>, tensor<32x64xf32>) outs(%f : tensor<16x64xf32>) {
    ^bb0(%p: f32, %q: f32, %acc: f32):
      %m = arith.mulf %p, %q : f32
      %s = arith.subf %acc, %m : f32
      linalg.yield %s : f32
    } -> tensor<16x64xf32>
    kiln.yield %g : tensor<16x64xf32>
  }
  return %y : tensor<16x64xf32>
}
