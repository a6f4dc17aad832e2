// One-row products with float weights stored as f16 (known finite: kiln.finite), bf16
// and f32 (an unquantized model decoding a token).
#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
#id = affine_map<(n, k) -> (n, k)>
func.func @main(%x: tensor<1x512xf32> {kiln.name = "x"})
    -> (tensor<1x48xf32> {kiln.name = "h"}, tensor<1x48xf32> {kiln.name = "b"}, tensor<1x48xf32> {kiln.name = "f"}) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x48xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<1x48xf32>) -> tensor<1x48xf32>
  %w16 = kiln.weight "h" from "w.bin"[0] {kiln.finite} : tensor<48x512xf16>
  %e16 = tensor.empty() : tensor<48x512xf32>
  %h = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%w16 : tensor<48x512xf16>) outs(%e16 : tensor<48x512xf32>) {
  ^bb0(%in: f16, %out: f32):
    %c = arith.extf %in : f16 to f32
    linalg.yield %c : f32
  } -> tensor<48x512xf32>
  %yh = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %h : tensor<1x512xf32>, tensor<48x512xf32>) outs(%acc : tensor<1x48xf32>) -> tensor<1x48xf32>
  %wb = kiln.weight "b" from "w.bin"[0] : tensor<48x512xbf16>
  %eb = tensor.empty() : tensor<48x512xf32>
  %b = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%wb : tensor<48x512xbf16>) outs(%eb : tensor<48x512xf32>) {
  ^bb0(%in: bf16, %out: f32):
    %c = arith.extf %in : bf16 to f32
    linalg.yield %c : f32
  } -> tensor<48x512xf32>
  %yb = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %b : tensor<1x512xf32>, tensor<48x512xf32>) outs(%acc : tensor<1x48xf32>) -> tensor<1x48xf32>
  %wf = kiln.weight "f" from "w.bin"[0] : tensor<48x512xf32>
  %yf = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %wf : tensor<1x512xf32>, tensor<48x512xf32>) outs(%acc : tensor<1x48xf32>) -> tensor<1x48xf32>
  return %yh, %yb, %yf : tensor<1x48xf32>, tensor<1x48xf32>, tensor<1x48xf32>
}
