// Two entry points sharing persistent state "acc": @bump adds x to it and returns its
// square; @read returns it.
#id = affine_map<(d0) -> (d0)>
func.func @bump(%x: tensor<4xf32> {kiln.name = "x"}, %s: tensor<4xf32> {kiln.state = "acc"}) -> (tensor<4xf32> {kiln.name = "y"}, tensor<4xf32> {kiln.state = "acc"}) {
  %e = tensor.empty() : tensor<4xf32>
  %n = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]} ins(%s, %x : tensor<4xf32>, tensor<4xf32>) outs(%e : tensor<4xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.addf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<4xf32>
  %y = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%n : tensor<4xf32>) outs(%e : tensor<4xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.mulf %a, %a : f32
    linalg.yield %r : f32
  } -> tensor<4xf32>
  return %y, %n : tensor<4xf32>, tensor<4xf32>
}
func.func @read(%s: tensor<4xf32> {kiln.state = "acc"}) -> (tensor<4xf32> {kiln.name = "value"}) {
  %e = tensor.empty() : tensor<4xf32>
  %y = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%s : tensor<4xf32>) outs(%e : tensor<4xf32>) {
  ^bb0(%a: f32, %o: f32):
    linalg.yield %a : f32
  } -> tensor<4xf32>
  return %y : tensor<4xf32>
}
