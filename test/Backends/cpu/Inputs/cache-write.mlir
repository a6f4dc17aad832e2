// A KV cache of 64 rows as persistent state, updated with 4 rows at a run-time offset
// (in place), and the same update of a cache that is not state (a copy plus the rows).
func.func @main(%cache: tensor<64x2x8xf32> {kiln.state = "k_cache"}, %rows: tensor<4x2x8xf32> {kiln.name = "rows"},
                %p: tensor<1xi64> {kiln.name = "p"}, %plain: tensor<64x2x8xf32> {kiln.name = "plain"})
    -> (tensor<64x2x8xf32> {kiln.state = "k_cache"}, tensor<64x2x8xf32> {kiln.name = "copy"}) {
  %0 = kiln.cache_write %rows into %cache at %p : tensor<4x2x8xf32> into tensor<64x2x8xf32>, tensor<1xi64>
  %1 = kiln.cache_write %rows into %plain at %p : tensor<4x2x8xf32> into tensor<64x2x8xf32>, tensor<1xi64>
  return %0, %1 : tensor<64x2x8xf32>, tensor<64x2x8xf32>
}
