// kiln-fuse-epilogues: an elementwise consumer joins the contraction feeding it.
// RUN: kiln-opt %s --kiln-fuse-epilogues --split-input-file | FileCheck %s

#a = affine_map<(m, n, k) -> (m, k)>
#b = affine_map<(m, n, k) -> (k, n)>
#c = affine_map<(m, n, k) -> (m, n)>
#id = affine_map<(m, n) -> (m, n)>
#row = affine_map<(m, n) -> (n)>

// A matmul and its bias + ReLU epilogue become one dispatch: the contraction first,
// then the epilogue reading its result, the bias an input of the fused dispatch.
// CHECK-LABEL: func.func @bias_relu_joins_matmul
// CHECK-SAME: (%[[X:.*]]: tensor<4x8xf32>, %[[W:.*]]: tensor<8x16xf32>, %[[B:.*]]: tensor<16xf32>, %[[Z:.*]]: tensor<4x16xf32>)
func.func @bias_relu_joins_matmul(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %bias: tensor<16xf32>, %zero: tensor<4x16xf32>) -> tensor<4x16xf32> {
  // CHECK: %[[R:.*]] = kiln.dispatch ins(%[[X]], %[[W]], %[[Z]], %[[B]] : tensor<4x8xf32>, tensor<8x16xf32>, tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
  // CHECK: %[[MM:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]
  // CHECK: arith.mulf
  // CHECK: linalg.generic {{.*}} ins(%[[MM]], %{{.*}} : tensor<4x16xf32>, tensor<16xf32>)
  // CHECK: arith.addf
  // CHECK: arith.maximumf
  // CHECK: kiln.yield
  // CHECK-NOT: kiln.dispatch
  // CHECK: return %[[R]]
  %mm = kiln.dispatch ins(%x, %w, %zero : tensor<4x8xf32>, tensor<8x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32> {
  ^bb0(%i: tensor<4x8xf32>, %j: tensor<8x16xf32>, %z: tensor<4x16xf32>):
    %g = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "reduction"]} ins(%i, %j : tensor<4x8xf32>, tensor<8x16xf32>) outs(%z : tensor<4x16xf32>) {
    ^bb0(%p: f32, %q: f32, %acc: f32):
      %m = arith.mulf %p, %q : f32
      %s = arith.addf %m, %acc : f32
      linalg.yield %s : f32
    } -> tensor<4x16xf32>
    kiln.yield %g : tensor<4x16xf32>
  }
  %act = kiln.dispatch ins(%mm, %bias : tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32> {
  ^bb0(%i: tensor<4x16xf32>, %b: tensor<16xf32>):
    %e = tensor.empty() : tensor<4x16xf32>
    %g = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]} ins(%i, %b : tensor<4x16xf32>, tensor<16xf32>) outs(%e : tensor<4x16xf32>) {
    ^bb0(%p: f32, %q: f32, %out: f32):
      %zero0 = arith.constant 0.0 : f32
      %s = arith.addf %p, %q : f32
      %r = arith.maximumf %s, %zero0 : f32
      linalg.yield %r : f32
    } -> tensor<4x16xf32>
    kiln.yield %g : tensor<4x16xf32>
  }
  return %act : tensor<4x16xf32>
}

// -----

#a = affine_map<(m, n, k) -> (m, k)>
#b = affine_map<(m, n, k) -> (k, n)>
#c = affine_map<(m, n, k) -> (m, n)>
#t = affine_map<(m, n) -> (n, m)>
#id = affine_map<(m, n) -> (m, n)>

// A consumer reading the product at another point than it writes (a transpose) needs
// more than the product's tile: it stays a dispatch of its own.
// CHECK-LABEL: func.func @transpose_stays
func.func @transpose_stays(%x: tensor<4x8xf32>, %w: tensor<8x4xf32>, %zero: tensor<4x4xf32>) -> tensor<4x4xf32> {
  // CHECK-COUNT-2: kiln.dispatch
  %mm = kiln.dispatch ins(%x, %w, %zero : tensor<4x8xf32>, tensor<8x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32> {
  ^bb0(%i: tensor<4x8xf32>, %j: tensor<8x4xf32>, %z: tensor<4x4xf32>):
    %g = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "reduction"]} ins(%i, %j : tensor<4x8xf32>, tensor<8x4xf32>) outs(%z : tensor<4x4xf32>) {
    ^bb0(%p: f32, %q: f32, %acc: f32):
      %m = arith.mulf %p, %q : f32
      %s = arith.addf %m, %acc : f32
      linalg.yield %s : f32
    } -> tensor<4x4xf32>
    kiln.yield %g : tensor<4x4xf32>
  }
  %tr = kiln.dispatch ins(%mm : tensor<4x4xf32>) -> tensor<4x4xf32> {
  ^bb0(%i: tensor<4x4xf32>):
    %e = tensor.empty() : tensor<4x4xf32>
    %g = linalg.generic {indexing_maps = [#t, #id], iterator_types = ["parallel", "parallel"]} ins(%i : tensor<4x4xf32>) outs(%e : tensor<4x4xf32>) {
    ^bb0(%p: f32, %out: f32):
      %n = arith.negf %p : f32
      linalg.yield %n : f32
    } -> tensor<4x4xf32>
    kiln.yield %g : tensor<4x4xf32>
  }
  return %tr : tensor<4x4xf32>
}

// -----

#a = affine_map<(m, n, k) -> (m, k)>
#b = affine_map<(m, n, k) -> (k, n)>
#c = affine_map<(m, n, k) -> (m, n)>
#id = affine_map<(m, n) -> (m, n)>

// A product that is also returned (or read by a second dispatch) must be stored anyway:
// no fusion.
// CHECK-LABEL: func.func @shared_product_stays
func.func @shared_product_stays(%x: tensor<4x8xf32>, %w: tensor<8x4xf32>, %zero: tensor<4x4xf32>) -> (tensor<4x4xf32>, tensor<4x4xf32>) {
  // CHECK-COUNT-2: kiln.dispatch
  %mm = kiln.dispatch ins(%x, %w, %zero : tensor<4x8xf32>, tensor<8x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32> {
  ^bb0(%i: tensor<4x8xf32>, %j: tensor<8x4xf32>, %z: tensor<4x4xf32>):
    %g = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "reduction"]} ins(%i, %j : tensor<4x8xf32>, tensor<8x4xf32>) outs(%z : tensor<4x4xf32>) {
    ^bb0(%p: f32, %q: f32, %acc: f32):
      %m = arith.mulf %p, %q : f32
      %s = arith.addf %m, %acc : f32
      linalg.yield %s : f32
    } -> tensor<4x4xf32>
    kiln.yield %g : tensor<4x4xf32>
  }
  %neg = kiln.dispatch ins(%mm : tensor<4x4xf32>) -> tensor<4x4xf32> {
  ^bb0(%i: tensor<4x4xf32>):
    %e = tensor.empty() : tensor<4x4xf32>
    %g = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%i : tensor<4x4xf32>) outs(%e : tensor<4x4xf32>) {
    ^bb0(%p: f32, %out: f32):
      %n = arith.negf %p : f32
      linalg.yield %n : f32
    } -> tensor<4x4xf32>
    kiln.yield %g : tensor<4x4xf32>
  }
  return %mm, %neg : tensor<4x4xf32>, tensor<4x4xf32>
}

// -----

#id = affine_map<(m, n) -> (m, n)>
#rowsum = affine_map<(m, n) -> (m)>

// A consumer that is itself a reduction (a softmax's row sum) is not an epilogue.
// CHECK-LABEL: func.func @reduction_consumer_stays
func.func @reduction_consumer_stays(%x: tensor<4x4xf32>, %w: tensor<4x4xf32>, %zero: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK-COUNT-2: kiln.dispatch
  %p = kiln.dispatch ins(%x, %w : tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32> {
  ^bb0(%i: tensor<4x4xf32>, %j: tensor<4x4xf32>):
    %e = tensor.empty() : tensor<4x4xf32>
    %g = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%i, %j : tensor<4x4xf32>, tensor<4x4xf32>) outs(%e : tensor<4x4xf32>) {
    ^bb0(%a: f32, %b: f32, %out: f32):
      %m = arith.mulf %a, %b : f32
      linalg.yield %m : f32
    } -> tensor<4x4xf32>
    kiln.yield %g : tensor<4x4xf32>
  }
  %s = kiln.dispatch ins(%p, %zero : tensor<4x4xf32>, tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%i: tensor<4x4xf32>, %z: tensor<4xf32>):
    %g = linalg.generic {indexing_maps = [#id, #rowsum], iterator_types = ["parallel", "reduction"]} ins(%i : tensor<4x4xf32>) outs(%z : tensor<4xf32>) {
    ^bb0(%a: f32, %acc: f32):
      %t = arith.addf %a, %acc : f32
      linalg.yield %t : f32
    } -> tensor<4xf32>
    kiln.yield %g : tensor<4xf32>
  }
  return %s : tensor<4xf32>
}

// -----

#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n) -> (m, n)>
#mnk = affine_map<(m, n, k) -> (m, n)>

// A product over packed weights (kiln.dequantize in its dispatch) takes its residual
// add as an epilogue too: its kernel computes the product's columns inside the
// epilogue's loops (Stage::placeIntoOutput), with no buffer or pass of its own.
// CHECK-LABEL: func.func @residual_joins_packed_product
// CHECK-SAME: (%[[A:.*]]: tensor<4x32xf32>, %[[Z:.*]]: tensor<4x8xf32>, %[[RES:.*]]: tensor<4x8xf32>)
func.func @residual_joins_packed_product(%a: tensor<4x32xf32>, %z: tensor<4x8xf32>, %res: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // CHECK: %[[W:.*]] = kiln.weight
  // CHECK: %[[R:.*]] = kiln.dispatch ins(%[[W]], %[[A]], %[[Z]], %[[RES]] : tensor<8x32x!kiln.quant<q8_0>>, tensor<4x32xf32>, tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  // CHECK: kiln.dequantize
  // CHECK: %[[MM:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]
  // CHECK: linalg.generic {{.*}} ins(%[[MM]], %{{.*}} : tensor<4x8xf32>, tensor<4x8xf32>)
  // CHECK: arith.addf
  // CHECK: kiln.yield
  // CHECK-NOT: kiln.dispatch
  // CHECK: return %[[R]]
  %w = kiln.weight "w" from "m.gguf"[0] : tensor<8x32x!kiln.quant<q8_0>>
  %mm = kiln.dispatch ins(%w, %a, %z : tensor<8x32x!kiln.quant<q8_0>>, tensor<4x32xf32>, tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%p: tensor<8x32x!kiln.quant<q8_0>>, %x: tensor<4x32xf32>, %acc: tensor<4x8xf32>):
    %d = kiln.dequantize %p : tensor<8x32x!kiln.quant<q8_0>>
    %g = linalg.generic {indexing_maps = [#mk, #nk, #mnk], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %d : tensor<4x32xf32>, tensor<8x32xf32>) outs(%acc : tensor<4x8xf32>) {
    ^bb0(%in: f32, %in2: f32, %out: f32):
      %m = arith.mulf %in, %in2 : f32
      %s = arith.addf %out, %m : f32
      linalg.yield %s : f32
    } -> tensor<4x8xf32>
    kiln.yield %g : tensor<4x8xf32>
  }
  %sum = kiln.dispatch ins(%mm, %res : tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%i: tensor<4x8xf32>, %r: tensor<4x8xf32>):
    %e = tensor.empty() : tensor<4x8xf32>
    %g = linalg.generic {indexing_maps = [#mn, #mn, #mn], iterator_types = ["parallel", "parallel"]} ins(%i, %r : tensor<4x8xf32>, tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
    ^bb0(%p: f32, %q: f32, %out: f32):
      %s = arith.addf %p, %q : f32
      linalg.yield %s : f32
    } -> tensor<4x8xf32>
    kiln.yield %g : tensor<4x8xf32>
  }
  return %sum : tensor<4x8xf32>
}
