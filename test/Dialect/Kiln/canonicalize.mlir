// Folders and canonicalization patterns of kiln ops.
// RUN: kiln-opt %s --canonicalize --split-input-file --allow-unregistered-dialect | FileCheck %s

// CHECK-LABEL: func.func @gather_from_splat_folds
func.func @gather_from_splat_folds(%ids: tensor<3xi32>) -> tensor<3x8xf32> {
  // CHECK-NOT: kiln.gather
  // CHECK: %[[C:.*]] = arith.constant dense<2.500000e+00> : tensor<3x8xf32>
  // CHECK: return %[[C]]
  %table = arith.constant dense<2.5> : tensor<100x8xf32>
  %0 = kiln.gather %table[%ids] : tensor<100x8xf32>, tensor<3xi32>
  return %0 : tensor<3x8xf32>
}

// -----

// CHECK-LABEL: func.func @gather_from_weight_stays
func.func @gather_from_weight_stays(%ids: tensor<3xi32>) -> tensor<3x8xf32> {
  // CHECK: kiln.gather
  %table = kiln.weight "tok" from "m.gguf"[0] : tensor<100x8xf32>
  %0 = kiln.gather %table[%ids] : tensor<100x8xf32>, tensor<3xi32>
  return %0 : tensor<3x8xf32>
}

// -----

// CHECK-LABEL: func.func @dispatch_forwarded_result
// CHECK-SAME: (%[[A:.*]]: tensor<4xf32>, %[[B:.*]]: tensor<4xf32>)
func.func @dispatch_forwarded_result(%a: tensor<4xf32>, %b: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  // The second result only returns input %b: users read %b directly, and the now
  // unread input disappears too.
  // CHECK: %[[R:.*]] = kiln.dispatch ins(%[[A]] : tensor<4xf32>) -> tensor<4xf32> {
  // CHECK-NEXT: ^bb0(%[[X:.*]]: tensor<4xf32>):
  // CHECK-NEXT:   %[[S:.*]] = arith.addf %[[X]], %[[X]]
  // CHECK-NEXT:   kiln.yield %[[S]] : tensor<4xf32>
  // CHECK: return %[[R]], %[[B]]
  %0:2 = kiln.dispatch ins(%a, %b : tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>, tensor<4xf32> {
  ^bb0(%x: tensor<4xf32>, %y: tensor<4xf32>):
    %s = arith.addf %x, %x : tensor<4xf32>
    kiln.yield %s, %y : tensor<4xf32>, tensor<4xf32>
  }
  return %0#0, %0#1 : tensor<4xf32>, tensor<4xf32>
}

// -----

// CHECK-LABEL: func.func @dispatch_unused_result
func.func @dispatch_unused_result(%a: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: kiln.dispatch ins(%{{.*}} : tensor<4xf32>) -> tensor<4xf32> {
  // CHECK-NOT: arith.mulf
  // CHECK: arith.addf
  // CHECK-NEXT: kiln.yield %{{.*}} : tensor<4xf32>
  %0:2 = kiln.dispatch ins(%a : tensor<4xf32>) -> tensor<4xf32>, tensor<4xf32> {
  ^bb0(%x: tensor<4xf32>):
    %s = arith.addf %x, %x : tensor<4xf32>
    %m = arith.mulf %x, %x : tensor<4xf32>
    kiln.yield %s, %m : tensor<4xf32>, tensor<4xf32>
  }
  return %0#0 : tensor<4xf32>
}

// -----

// CHECK-LABEL: func.func @dispatch_duplicate_inputs
// CHECK-SAME: (%[[A:.*]]: tensor<4xf32>)
func.func @dispatch_duplicate_inputs(%a: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: kiln.dispatch ins(%[[A]] : tensor<4xf32>) -> tensor<4xf32> {
  // CHECK-NEXT: ^bb0(%[[X:.*]]: tensor<4xf32>):
  // CHECK-NEXT:   arith.mulf %[[X]], %[[X]]
  %0 = kiln.dispatch ins(%a, %a : tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%x: tensor<4xf32>, %y: tensor<4xf32>):
    %m = arith.mulf %x, %y : tensor<4xf32>
    kiln.yield %m : tensor<4xf32>
  }
  return %0 : tensor<4xf32>
}

// -----

// CHECK-LABEL: func.func @dispatch_without_uses_is_erased
func.func @dispatch_without_uses_is_erased(%a: tensor<4xf32>) {
  // CHECK-NOT: kiln.dispatch
  // CHECK: return
  %0 = kiln.dispatch ins(%a : tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%x: tensor<4xf32>):
    %s = arith.addf %x, %x : tensor<4xf32>
    kiln.yield %s : tensor<4xf32>
  }
  return
}

// -----

// CHECK-LABEL: func.func @dispatch_with_side_effects_stays
func.func @dispatch_with_side_effects_stays(%a: tensor<4xf32>) {
  // An unregistered op may have side effects, so the dispatch must not be erased
  // even though none of its results is used.
  // CHECK: kiln.dispatch
  // CHECK: "test.side_effect"
  kiln.dispatch ins(%a : tensor<4xf32>) {
  ^bb0(%x: tensor<4xf32>):
    "test.side_effect"(%x) : (tensor<4xf32>) -> ()
    kiln.yield
  }
  return
}

// -----

// CHECK-LABEL: func.func @dispatch_in_canonical_form_is_unchanged
func.func @dispatch_in_canonical_form_is_unchanged(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: kiln.dispatch ins(%{{.*}}, %{{.*}} : tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %0 = kiln.dispatch ins(%a, %b : tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%x: tensor<4xf32>, %y: tensor<4xf32>):
    %s = arith.subf %x, %y : tensor<4xf32>
    kiln.yield %s : tensor<4xf32>
  }
  return %0 : tensor<4xf32>
}
