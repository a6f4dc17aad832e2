// kiln-fuse-elementwise: elementwise chains become one dispatch.
// RUN: kiln-opt %s --kiln-fuse-elementwise --split-input-file | FileCheck %s

#id = affine_map<(d0) -> (d0)>
#scalar = affine_map<(d0) -> ()>

// CHECK-LABEL: func.func @chain_becomes_one_dispatch
// CHECK-SAME: (%[[X:.*]]: tensor<8xf32>, %[[Y:.*]]: tensor<8xf32>)
func.func @chain_becomes_one_dispatch(%x: tensor<8xf32>, %y: tensor<8xf32>) -> tensor<8xf32> {
  // CHECK: %[[R:.*]] = kiln.dispatch ins(%[[X]], %[[Y]] : tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  // CHECK: linalg.generic
  // CHECK: math.exp
  // CHECK: linalg.generic
  // CHECK: arith.addf
  // CHECK: kiln.yield
  // CHECK-NOT: kiln.dispatch
  // CHECK: return %[[R]]
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
  %b = kiln.dispatch ins(%a, %y : tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%i: tensor<8xf32>, %j: tensor<8xf32>):
    %e = tensor.empty() : tensor<8xf32>
    %g = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]} ins(%i, %j : tensor<8xf32>, tensor<8xf32>) outs(%e : tensor<8xf32>) {
    ^bb0(%in: f32, %in2: f32, %out: f32):
      %v = arith.addf %in, %in2 : f32
      linalg.yield %v : f32
    } -> tensor<8xf32>
    kiln.yield %g : tensor<8xf32>
  }
  return %b : tensor<8xf32>
}

// -----

#id = affine_map<(d0) -> (d0)>

// A producer read by two consumers stays separate: fusing would compute it twice.
// CHECK-LABEL: func.func @shared_producer_stays
func.func @shared_producer_stays(%x: tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>) {
  // CHECK-COUNT-3: kiln.dispatch
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
      %v = math.sqrt %in : f32
      linalg.yield %v : f32
    } -> tensor<8xf32>
    kiln.yield %g : tensor<8xf32>
  }
  %c = kiln.dispatch ins(%a : tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%i: tensor<8xf32>):
    %e = tensor.empty() : tensor<8xf32>
    %g = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%i : tensor<8xf32>) outs(%e : tensor<8xf32>) {
    ^bb0(%in: f32, %out: f32):
      %v = math.log %in : f32
      linalg.yield %v : f32
    } -> tensor<8xf32>
    kiln.yield %g : tensor<8xf32>
  }
  return %b, %c : tensor<8xf32>, tensor<8xf32>
}

// -----

#mk = affine_map<(m, n, k) -> (m, k)>
#kn = affine_map<(m, n, k) -> (k, n)>
#mn = affine_map<(m, n, k) -> (m, n)>
#fill = affine_map<(d0, d1) -> ()>
#id2 = affine_map<(d0, d1) -> (d0, d1)>

// A fill feeding only a matmul's accumulator is computed inside the matmul kernel;
// an elementwise op feeding the matmul's operand is not (the matmul reads each element
// many times).
// CHECK-LABEL: func.func @fill_fuses_into_reduction_init
func.func @fill_fuses_into_reduction_init(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>) -> tensor<4x16xf32> {
  // CHECK: kiln.dispatch
  // CHECK: math.exp
  // CHECK: kiln.yield
  // CHECK: kiln.dispatch
  // CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]
  // CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]
  // CHECK: kiln.yield
  // CHECK-NOT: kiln.dispatch
  %ea = kiln.dispatch ins(%a : tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%i: tensor<4x8xf32>):
    %e = tensor.empty() : tensor<4x8xf32>
    %g = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%i : tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
    ^bb0(%in: f32, %out: f32):
      %v = math.exp %in : f32
      linalg.yield %v : f32
    } -> tensor<4x8xf32>
    kiln.yield %g : tensor<4x8xf32>
  }
  %acc = kiln.dispatch -> tensor<4x16xf32> {
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<4x16xf32>
    %f = linalg.generic {indexing_maps = [#fill, #id2], iterator_types = ["parallel", "parallel"]} ins(%zero : f32) outs(%e : tensor<4x16xf32>) {
    ^bb0(%in: f32, %out: f32):
      linalg.yield %in : f32
    } -> tensor<4x16xf32>
    kiln.yield %f : tensor<4x16xf32>
  }
  %mm = kiln.dispatch ins(%ea, %b, %acc : tensor<4x8xf32>, tensor<8x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32> {
  ^bb0(%x: tensor<4x8xf32>, %y: tensor<8x16xf32>, %z: tensor<4x16xf32>):
    %g = linalg.generic {indexing_maps = [#mk, #kn, #mn], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %y : tensor<4x8xf32>, tensor<8x16xf32>) outs(%z : tensor<4x16xf32>) {
    ^bb0(%in: f32, %in2: f32, %out: f32):
      %p = arith.mulf %in, %in2 : f32
      %s = arith.addf %out, %p : f32
      linalg.yield %s : f32
    } -> tensor<4x16xf32>
    kiln.yield %g : tensor<4x16xf32>
  }
  return %mm : tensor<4x16xf32>
}

// -----

#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>

// Unpacking a weight moves into the matmul that reads it: the kernel reads the packed
// bytes, and no f32 copy of the weight is stored.
// CHECK-LABEL: func.func @dequantize_fuses_into_its_reader
// CHECK-SAME: (%[[A:.*]]: tensor<4x32xf32>, %[[Z:.*]]: tensor<4x8xf32>)
func.func @dequantize_fuses_into_its_reader(%a: tensor<4x32xf32>, %z: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // CHECK: %[[W:.*]] = kiln.weight
  // CHECK: kiln.dispatch ins(%[[W]], %[[A]], %[[Z]] : tensor<8x32x!kiln.quant<q4_0>>, tensor<4x32xf32>, tensor<4x8xf32>)
  // CHECK: kiln.dequantize
  // CHECK: linalg.generic
  // CHECK-NOT: kiln.dispatch
  %w = kiln.weight "w" from "m.gguf"[0] : tensor<8x32x!kiln.quant<q4_0>>
  %wf = kiln.dispatch ins(%w : tensor<8x32x!kiln.quant<q4_0>>) -> tensor<8x32xf32> {
  ^bb0(%p: tensor<8x32x!kiln.quant<q4_0>>):
    %d = kiln.dequantize %p : tensor<8x32x!kiln.quant<q4_0>>
    kiln.yield %d : tensor<8x32xf32>
  }
  %mm = kiln.dispatch ins(%a, %wf, %z : tensor<4x32xf32>, tensor<8x32xf32>, tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%x: tensor<4x32xf32>, %y: tensor<8x32xf32>, %acc: tensor<4x8xf32>):
    %g = linalg.generic {indexing_maps = [#mk, #nk, #mn], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %y : tensor<4x32xf32>, tensor<8x32xf32>) outs(%acc : tensor<4x8xf32>) {
    ^bb0(%in: f32, %in2: f32, %out: f32):
      %p = arith.mulf %in, %in2 : f32
      %s = arith.addf %out, %p : f32
      linalg.yield %s : f32
    } -> tensor<4x8xf32>
    kiln.yield %g : tensor<4x8xf32>
  }
  return %mm : tensor<4x8xf32>
}

// -----

#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
#id = affine_map<(n, k) -> (n, k)>

// Widening an f16 weight to f32 moves into the matmul that reads it, as unpacking does:
// the kernel reads 2 bytes per value and no f32 copy of the weight is stored. Widening
// a tensor that is not a weight (an activation) stays on the rules for elementwise work.
// CHECK-LABEL: func.func @weight_widening_fuses_into_its_reader
// CHECK-SAME: (%[[A:.*]]: tensor<4x32xf32>, %[[Z:.*]]: tensor<4x8xf32>, %[[H:.*]]: tensor<8x32xf16>)
func.func @weight_widening_fuses_into_its_reader(%a: tensor<4x32xf32>, %z: tensor<4x8xf32>, %h: tensor<8x32xf16>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  // CHECK: %[[W:.*]] = kiln.weight
  // CHECK: kiln.dispatch ins(%[[W]], %[[A]], %[[Z]] : tensor<8x32xf16>, tensor<4x32xf32>, tensor<4x8xf32>)
  // CHECK: arith.extf
  // CHECK: arith.mulf
  // CHECK: %[[HF:.*]] = kiln.dispatch ins(%[[H]] : tensor<8x32xf16>)
  // CHECK: kiln.dispatch ins(%[[A]], %[[HF]], %[[Z]] :
  %w = kiln.weight "w" from "m.gguf"[0] : tensor<8x32xf16>
  %wf = kiln.dispatch ins(%w : tensor<8x32xf16>) -> tensor<8x32xf32> {
  ^bb0(%p: tensor<8x32xf16>):
    %e = tensor.empty() : tensor<8x32xf32>
    %d = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%p : tensor<8x32xf16>) outs(%e : tensor<8x32xf32>) {
    ^bb0(%in: f16, %out: f32):
      %c = arith.extf %in : f16 to f32
      linalg.yield %c : f32
    } -> tensor<8x32xf32>
    kiln.yield %d : tensor<8x32xf32>
  }
  %mm = kiln.dispatch ins(%a, %wf, %z : tensor<4x32xf32>, tensor<8x32xf32>, tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%x: tensor<4x32xf32>, %y: tensor<8x32xf32>, %acc: tensor<4x8xf32>):
    %g = linalg.generic {indexing_maps = [#mk, #nk, #mn], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %y : tensor<4x32xf32>, tensor<8x32xf32>) outs(%acc : tensor<4x8xf32>) {
    ^bb0(%in: f32, %in2: f32, %out: f32):
      %p = arith.mulf %in, %in2 : f32
      %s = arith.addf %out, %p : f32
      linalg.yield %s : f32
    } -> tensor<4x8xf32>
    kiln.yield %g : tensor<4x8xf32>
  }
  %hf = kiln.dispatch ins(%h : tensor<8x32xf16>) -> tensor<8x32xf32> {
  ^bb0(%p: tensor<8x32xf16>):
    %e = tensor.empty() : tensor<8x32xf32>
    %d = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%p : tensor<8x32xf16>) outs(%e : tensor<8x32xf32>) {
    ^bb0(%in: f16, %out: f32):
      %c = arith.extf %in : f16 to f32
      linalg.yield %c : f32
    } -> tensor<8x32xf32>
    kiln.yield %d : tensor<8x32xf32>
  }
  %mm2 = kiln.dispatch ins(%a, %hf, %z : tensor<4x32xf32>, tensor<8x32xf32>, tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%x: tensor<4x32xf32>, %y: tensor<8x32xf32>, %acc: tensor<4x8xf32>):
    %g = linalg.generic {indexing_maps = [#mk, #nk, #mn], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %y : tensor<4x32xf32>, tensor<8x32xf32>) outs(%acc : tensor<4x8xf32>) {
    ^bb0(%in: f32, %in2: f32, %out: f32):
      %p = arith.mulf %in, %in2 : f32
      %s = arith.addf %out, %p : f32
      linalg.yield %s : f32
    } -> tensor<4x8xf32>
    kiln.yield %g : tensor<4x8xf32>
  }
  return %mm, %mm2 : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

#a = affine_map<(m, n, k) -> (m, k)>
#b = affine_map<(m, n, k) -> (k, n)>
#c = affine_map<(m, n, k) -> (m, n)>
#scalar = affine_map<(m, n) -> ()>
#id = affine_map<(m, n) -> (m, n)>

// A fill that reads nothing, shared by two matmuls as their initial value (CSE merges
// identical fills), is recomputed inside each: reading zeros from memory costs more.
// CHECK-LABEL: func.func @shared_fill_is_recomputed
func.func @shared_fill_is_recomputed(%x: tensor<4x8xf32>, %w: tensor<8x4xf32>, %v: tensor<8x4xf32>) -> (tensor<4x4xf32>, tensor<4x4xf32>) {
  // CHECK-COUNT-2: kiln.dispatch ins(%{{.*}}, %{{.*}} : tensor<4x8xf32>, tensor<8x4xf32>) -> tensor<4x4xf32>
  // CHECK-NOT: kiln.dispatch
  %zero = kiln.dispatch -> tensor<4x4xf32> {
    %cst = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<4x4xf32>
    %g = linalg.generic {indexing_maps = [#scalar, #id], iterator_types = ["parallel", "parallel"]} ins(%cst : f32) outs(%e : tensor<4x4xf32>) {
    ^bb0(%in: f32, %out: f32):
      linalg.yield %in : f32
    } -> tensor<4x4xf32>
    kiln.yield %g : tensor<4x4xf32>
  }
  %p = kiln.dispatch ins(%x, %w, %zero : tensor<4x8xf32>, tensor<8x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32> {
  ^bb0(%i: tensor<4x8xf32>, %j: tensor<8x4xf32>, %z: tensor<4x4xf32>):
    %g = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "reduction"]} ins(%i, %j : tensor<4x8xf32>, tensor<8x4xf32>) outs(%z : tensor<4x4xf32>) {
    ^bb0(%s: f32, %t: f32, %acc: f32):
      %m = arith.mulf %s, %t : f32
      %r = arith.addf %m, %acc : f32
      linalg.yield %r : f32
    } -> tensor<4x4xf32>
    kiln.yield %g : tensor<4x4xf32>
  }
  %q = kiln.dispatch ins(%x, %v, %zero : tensor<4x8xf32>, tensor<8x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32> {
  ^bb0(%i: tensor<4x8xf32>, %j: tensor<8x4xf32>, %z: tensor<4x4xf32>):
    %g = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "reduction"]} ins(%i, %j : tensor<4x8xf32>, tensor<8x4xf32>) outs(%z : tensor<4x4xf32>) {
    ^bb0(%s: f32, %t: f32, %acc: f32):
      %m = arith.mulf %s, %t : f32
      %r = arith.addf %m, %acc : f32
      linalg.yield %r : f32
    } -> tensor<4x4xf32>
    kiln.yield %g : tensor<4x4xf32>
  }
  return %p, %q : tensor<4x4xf32>, tensor<4x4xf32>
}

// -----

#id = affine_map<(n, c, h) -> (n, c, h)>
#channel = affine_map<(n, c, h) -> (c, 0)>

// Broadcasts whose maps pin a size-1 dimension to 0 (a [C, 1] per-channel bias, as
// ONNX importers write BatchNorm's parameters) still read each element once per point:
// the bias add and the ReLU after it are one elementwise chain.
// CHECK-LABEL: func.func @pinned_broadcast_fuses
func.func @pinned_broadcast_fuses(%x: tensor<1x4x8xf32>, %bias: tensor<4x1xf32>) -> tensor<1x4x8xf32> {
  // CHECK-COUNT-1: kiln.dispatch
  // CHECK-NOT: kiln.dispatch
  %a = kiln.dispatch ins(%x, %bias : tensor<1x4x8xf32>, tensor<4x1xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%i: tensor<1x4x8xf32>, %b: tensor<4x1xf32>):
    %e = tensor.empty() : tensor<1x4x8xf32>
    %g = linalg.generic {indexing_maps = [#id, #channel, #id], iterator_types = ["parallel", "parallel", "parallel"]} ins(%i, %b : tensor<1x4x8xf32>, tensor<4x1xf32>) outs(%e : tensor<1x4x8xf32>) {
    ^bb0(%p: f32, %q: f32, %out: f32):
      %s = arith.addf %p, %q : f32
      linalg.yield %s : f32
    } -> tensor<1x4x8xf32>
    kiln.yield %g : tensor<1x4x8xf32>
  }
  %r = kiln.dispatch ins(%a : tensor<1x4x8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%i: tensor<1x4x8xf32>):
    %e = tensor.empty() : tensor<1x4x8xf32>
    %g = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]} ins(%i : tensor<1x4x8xf32>) outs(%e : tensor<1x4x8xf32>) {
    ^bb0(%p: f32, %out: f32):
      %zero = arith.constant 0.0 : f32
      %m = arith.maximumf %p, %zero : f32
      linalg.yield %m : f32
    } -> tensor<1x4x8xf32>
    kiln.yield %g : tensor<1x4x8xf32>
  }
  return %r : tensor<1x4x8xf32>
}
