// A decode step's KV-cache write: one row at a run-time offset, in place.
func.func @main(%cache: tensor<64x1x8xf32> {kiln.state = "k_cache"}, %row: tensor<1x1x8xf32> {kiln.name = "row"},
                %p: tensor<1xi64> {kiln.name = "p"}) -> (tensor<64x1x8xf32> {kiln.state = "k_cache"}) {
  %0 = kiln.cache_write %row into %cache at %p : tensor<1x1x8xf32> into tensor<64x1x8xf32>, tensor<1xi64>
  return %0 : tensor<64x1x8xf32>
}
