// kiln-fuse-elementwise with max-ops: a chain longer than the cap becomes several
// dispatches, each of at most max-ops generics, filled from the start of the chain.
// RUN: kiln-opt %s --kiln-fuse-elementwise="max-ops=2" | FileCheck %s

#id = affine_map<(d0) -> (d0)>

// CHECK-LABEL: func.func @chain_is_split_at_max_ops
// CHECK: %[[A:.*]] = kiln.dispatch ins(%{{.*}} : tensor<8xf32>)
// CHECK-COUNT-2: math.exp
// CHECK: kiln.yield
// CHECK: %[[B:.*]] = kiln.dispatch ins(%[[A]] : tensor<8xf32>)
// CHECK: math.exp
// CHECK-NOT: math.exp
// CHECK: kiln.yield
// CHECK-NOT: kiln.dispatch
// CHECK: return %[[B]]
func.func @chain_is_split_at_max_ops(%x: tensor<8xf32>) -> tensor<8xf32> {
  %a = kiln.dispatch ins(%x : tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%i: tensor<8xf32>):
    %e = tensor.empty() : tensor<8xf32>
    %g = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%i : tensor<8xf32>) outs(%e : tensor<8xf32>) {
    ^bb0(%in: f32, %out: f32):
      %v = math.exp %in : f32
      linalg.yield %v : f32
    } -> tensor<8xf32>
    kiln.yield %g : tensor<8xf32>
  }
  %b = kiln.dispatch ins(%a : tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%i: tensor<8xf32>):
    %e = tensor.empty() : tensor<8xf32>
    %g = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%i : tensor<8xf32>) outs(%e : tensor<8xf32>) {
    ^bb0(%in: f32, %out: f32):
      %v = math.exp %in : f32
      linalg.yield %v : f32
    } -> tensor<8xf32>
    kiln.yield %g : tensor<8xf32>
  }
  %c = kiln.dispatch ins(%b : tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%i: tensor<8xf32>):
    %e = tensor.empty() : tensor<8xf32>
    %g = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%i : tensor<8xf32>) outs(%e : tensor<8xf32>) {
    ^bb0(%in: f32, %out: f32):
      %v = math.exp %in : f32
      linalg.yield %v : f32
    } -> tensor<8xf32>
    kiln.yield %g : tensor<8xf32>
  }
  return %c : tensor<8xf32>
}

// A producer whose input repeats: the fused dispatch reads each input once.
// CHECK-LABEL: func.func @repeated_input_is_read_once
// CHECK: kiln.dispatch ins(%{{[^,]*}} : tensor<8xf32>) -> tensor<8xf32>
// CHECK-NOT: kiln.dispatch
func.func @repeated_input_is_read_once(%x: tensor<8xf32>) -> tensor<8xf32> {
  %a = kiln.dispatch ins(%x, %x : tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%i: tensor<8xf32>, %j: tensor<8xf32>):
    %e = tensor.empty() : tensor<8xf32>
    %g = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]} ins(%i, %j : tensor<8xf32>, tensor<8xf32>) outs(%e : tensor<8xf32>) {
    ^bb0(%in: f32, %in2: f32, %out: f32):
      %v = arith.addf %in, %in2 : f32
      linalg.yield %v : f32
    } -> tensor<8xf32>
    kiln.yield %g : tensor<8xf32>
  }
  %b = kiln.dispatch ins(%a, %x : tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%i: tensor<8xf32>, %j: tensor<8xf32>):
    %e = tensor.empty() : tensor<8xf32>
    %g = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]} ins(%i, %j : tensor<8xf32>, tensor<8xf32>) outs(%e : tensor<8xf32>) {
    ^bb0(%in: f32, %in2: f32, %out: f32):
      %v = arith.mulf %in, %in2 : f32
      linalg.yield %v : f32
    } -> tensor<8xf32>
    kiln.yield %g : tensor<8xf32>
  }
  return %b : tensor<8xf32>
}
