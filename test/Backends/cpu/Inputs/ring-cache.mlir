// A sliding-window block's key cache as a ring of 8 rows over 64 positions: 5 new rows
// written in place at positions p .. p + 4 (rows (p + i) mod 8), then window-4
// attention of the 5 queries over the ring.
func.func @main(%cache: tensor<8x2x16xf32> {kiln.state = "k_cache"}, %rows: tensor<5x2x16xf32> {kiln.name = "rows"},
                %q: tensor<5x4x16xf32> {kiln.name = "q"}, %v: tensor<8x2x16xf32> {kiln.name = "v"},
                %p: tensor<1xi64> {kiln.name = "p"})
    -> (tensor<8x2x16xf32> {kiln.state = "k_cache"}, tensor<5x4x16xf32> {kiln.name = "y"}) {
  %k = kiln.cache_write %rows into %cache at %p {ring} : tensor<5x2x16xf32> into tensor<8x2x16xf32>, tensor<1xi64>
  %y = kiln.attention %q, %k, %v offset(%p : tensor<1xi64>) {window = 4, ring_positions = 64} : tensor<5x4x16xf32>, tensor<8x2x16xf32>, tensor<8x2x16xf32>
  return %k, %y : tensor<8x2x16xf32>, tensor<5x4x16xf32>
}
