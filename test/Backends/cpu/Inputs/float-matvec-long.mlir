// A one-row product whose row (8192 values, 32 KiB in f32) is longer than L1 keeps
// beside the weight stream: an FFN's down projection. bf16 weights.
#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
#id = affine_map<(n, k) -> (n, k)>
func.func @main(%x: tensor<1x8192xf32> {kiln.name = "x"})
    -> (tensor<1x32xf32> {kiln.name = "y"}) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<1x32xf32>) -> tensor<1x32xf32>
  %w = kiln.weight "w" from "w.bin"[0] : tensor<32x8192xbf16>
  %ew = tensor.empty() : tensor<32x8192xf32>
  %wf = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%w : tensor<32x8192xbf16>) outs(%ew : tensor<32x8192xf32>) {
  ^bb0(%in: bf16, %out: f32):
    %c = arith.extf %in : bf16 to f32
    linalg.yield %c : f32
  } -> tensor<32x8192xf32>
  %y = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %wf : tensor<1x8192xf32>, tensor<32x8192xf32>) outs(%acc : tensor<1x32xf32>) -> tensor<1x32xf32>
  return %y : tensor<1x32xf32>
}
