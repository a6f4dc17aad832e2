// Attention over a 64-row KV cache placed by a run-time query offset (a decode step,
// a sliding-window one, and a prefill pass of 6 queries). Input of attention-offset.test.
func.func @main(%q: tensor<1x4x8xf32> {kiln.name = "q"}, %k: tensor<64x2x8xf32> {kiln.name = "k"},
                %v: tensor<64x2x8xf32> {kiln.name = "v"}, %p: tensor<1xi64> {kiln.name = "p"},
                %q6: tensor<6x4x8xf32> {kiln.name = "q6"})
    -> (tensor<1x4x8xf32> {kiln.name = "full"}, tensor<1x4x8xf32> {kiln.name = "sliding"},
        tensor<6x4x8xf32> {kiln.name = "prefill"}) {
  %0 = kiln.attention %q, %k, %v offset(%p : tensor<1xi64>) : tensor<1x4x8xf32>, tensor<64x2x8xf32>, tensor<64x2x8xf32>
  %1 = kiln.attention %q, %k, %v offset(%p : tensor<1xi64>) {window = 16} : tensor<1x4x8xf32>, tensor<64x2x8xf32>, tensor<64x2x8xf32>
  %2 = kiln.attention %q6, %k, %v offset(%p : tensor<1xi64>) : tensor<6x4x8xf32>, tensor<64x2x8xf32>, tensor<64x2x8xf32>
  return %0, %1, %2 : tensor<1x4x8xf32>, tensor<1x4x8xf32>, tensor<6x4x8xf32>
}
