// kiln-form-dispatches: one kiln.dispatch per kernel op.
// RUN: kiln-opt %s --kiln-form-dispatches --split-input-file | FileCheck %s
// Running it twice changes nothing more (already-dispatched ops are left alone).
// RUN: kiln-opt %s --kiln-form-dispatches --split-input-file | kiln-opt --kiln-form-dispatches | FileCheck %s

// CHECK-LABEL: func.func @matmul_clones_its_empty_init
// CHECK-SAME: (%[[A:.*]]: tensor<4x8xf32>, %[[B:.*]]: tensor<8x16xf32>)
func.func @matmul_clones_its_empty_init(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>) -> tensor<4x16xf32> {
  // The zero-filled accumulator is rematerialized inside the kernel, not passed in.
  // CHECK-NOT: tensor.empty
  // CHECK: %[[F:.*]] = kiln.dispatch -> tensor<4x16xf32> {
  // CHECK-NEXT:   arith.constant 0.0
  // CHECK-NEXT:   tensor.empty() : tensor<4x16xf32>
  // CHECK-NEXT:   linalg.fill
  // CHECK-NEXT:   kiln.yield
  // CHECK: %[[M:.*]] = kiln.dispatch ins(%[[A]], %[[B]], %[[F]] : tensor<4x8xf32>, tensor<8x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32> {
  // CHECK-NEXT: ^bb0(%[[X:.*]]: tensor<4x8xf32>, %[[Y:.*]]: tensor<8x16xf32>, %[[Z:.*]]: tensor<4x16xf32>):
  // CHECK-NEXT:   %[[R:.*]] = linalg.matmul ins(%[[X]], %[[Y]] : tensor<4x8xf32>, tensor<8x16xf32>) outs(%[[Z]] : tensor<4x16xf32>)
  // CHECK-NEXT:   kiln.yield %[[R]] : tensor<4x16xf32>
  // CHECK: return %[[M]]
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<4x16xf32>
  %fill = linalg.fill ins(%zero : f32) outs(%init : tensor<4x16xf32>) -> tensor<4x16xf32>
  %0 = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x16xf32>) outs(%fill : tensor<4x16xf32>) -> tensor<4x16xf32>
  return %0 : tensor<4x16xf32>
}

// -----

// CHECK-LABEL: func.func @kiln_ops_and_tensor_arith
func.func @kiln_ops_and_tensor_arith(%x: tensor<2x16xf32>, %ids: tensor<2xi32>) -> tensor<2x16xf32> {
  // Weights stay outside (their bytes live in the artifact); each kernel op gets a dispatch.
  // CHECK: %[[T:.*]] = kiln.weight "tok"
  // CHECK: %[[N:.*]] = kiln.weight "norm"
  // CHECK: %[[G:.*]] = kiln.dispatch ins(%[[T]], %{{.*}} : tensor<100x16xf32>, tensor<2xi32>)
  // CHECK:   kiln.gather
  // CHECK: %[[R:.*]] = kiln.dispatch ins(%[[G]], %[[N]] : tensor<2x16xf32>, tensor<16xf32>)
  // CHECK:   kiln.rms_norm
  // CHECK: kiln.dispatch ins(%[[R]], %{{.*}} : tensor<2x16xf32>, tensor<2x16xf32>)
  // CHECK:   arith.addf
  %t = kiln.weight "tok" from "m.gguf"[0] : tensor<100x16xf32>
  %n = kiln.weight "norm" from "m.gguf"[6400] : tensor<16xf32>
  %g = kiln.gather %t[%ids] : tensor<100x16xf32>, tensor<2xi32>
  %r = kiln.rms_norm %g, %n : tensor<2x16xf32>, tensor<16xf32>
  %s = arith.addf %r, %x : tensor<2x16xf32>
  return %s : tensor<2x16xf32>
}

// -----

// CHECK-LABEL: func.func @scalars_and_generic_bodies_are_not_kernels
func.func @scalars_and_generic_bodies_are_not_kernels(%a: f32, %x: tensor<8xf32>) -> (f32, tensor<8xf32>) {
  // Scalar arithmetic needs no kernel, and the scalar ops inside a linalg.generic
  // belong to its kernel.
  // CHECK: %[[S:.*]] = arith.mulf %{{.*}}, %{{.*}} : f32
  // CHECK: kiln.dispatch
  // CHECK: linalg.generic
  // CHECK: arith.addf
  // CHECK: linalg.yield
  // CHECK: kiln.yield
  // CHECK-NOT: kiln.dispatch
  %s = arith.mulf %a, %a : f32
  %0 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>],
                       iterator_types = ["parallel"]} ins(%x : tensor<8xf32>) outs(%x : tensor<8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %y = arith.addf %in, %in : f32
    linalg.yield %y : f32
  } -> tensor<8xf32>
  return %s, %0 : f32, tensor<8xf32>
}

// -----

// CHECK-LABEL: func.func @large_constants_become_inputs
func.func @large_constants_become_inputs(%x: tensor<4xf32>) -> tensor<4xf32> {
  // A non-splat constant is data: it is passed in, not copied into the kernel.
  // CHECK: %[[C:.*]] = arith.constant dense<[1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00]>
  // CHECK: kiln.dispatch ins(%{{.*}}, %[[C]] : tensor<4xf32>, tensor<4xf32>)
  %c = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %0 = arith.mulf %x, %c : tensor<4xf32>
  return %0 : tensor<4xf32>
}
