// kiln-select-schedules records the schedule knobs each dispatch's kernel takes.
// RUN: kiln-opt %s --kiln-select-schedules=schedule=tile_rows=4 | FileCheck %s
// RUN: kiln-opt %s --kiln-select-schedules | FileCheck %s --check-prefix=DEFAULT

#id = affine_map<(d0) -> (d0)>

// CHECK-LABEL: func.func @every_dispatch
// CHECK: kiln.dispatch ins(%{{.*}} : tensor<8xf32>) -> tensor<8xf32> attributes {kiln.schedule = "tile_rows=4"}
// CHECK: kiln.dispatch ins(%{{.*}} : tensor<8xf32>) -> tensor<8xf32> attributes {kiln.schedule = "tile_rows=4"}
// Without knobs nothing is recorded: the backend's default applies.
// DEFAULT-NOT: kiln.schedule
func.func @every_dispatch(%x: tensor<8xf32>) -> tensor<8xf32> {
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
      %v = math.log %in : f32
      linalg.yield %v : f32
    } -> tensor<8xf32>
    kiln.yield %g : tensor<8xf32>
  }
  return %b : tensor<8xf32>
}
