// kiln-plan-memory: arena offsets from liveness over the dispatch order.
// RUN: kiln-opt %s --kiln-plan-memory --split-input-file --verify-diagnostics --allow-unregistered-dialect | FileCheck %s

// Three 4 KiB values in a chain: %a dies when %c is computed, so %c reuses %a's slot
// while %b (read by %c) stays put. Arena = 2 slots = the largest live set.
// CHECK-LABEL: func.func @chain_reuses_dead_slots
// CHECK-SAME: kiln.arena_in_place = 0 : i64, kiln.arena_lower_bound = 8192 : i64, kiln.arena_size = 8192 : i64
func.func @chain_reuses_dead_slots(%x: tensor<1024xf32>) -> tensor<1024xf32> {
  // CHECK: kiln.dispatch {{.*}} attributes {kiln.arena_offsets = array<i64: 0>}
  %a = kiln.dispatch ins(%x : tensor<1024xf32>) -> tensor<1024xf32> {
  ^bb0(%i: tensor<1024xf32>):
    %e = "test.make"(%i) : (tensor<1024xf32>) -> tensor<1024xf32>
    kiln.yield %e : tensor<1024xf32>
  }
  // CHECK: kiln.dispatch {{.*}} attributes {kiln.arena_offsets = array<i64: 4096>}
  %b = kiln.dispatch ins(%a : tensor<1024xf32>) -> tensor<1024xf32> {
  ^bb0(%i: tensor<1024xf32>):
    %e = "test.make"(%i) : (tensor<1024xf32>) -> tensor<1024xf32>
    kiln.yield %e : tensor<1024xf32>
  }
  // CHECK: kiln.dispatch {{.*}} attributes {kiln.arena_offsets = array<i64: 0>}
  %c = kiln.dispatch ins(%b : tensor<1024xf32>) -> tensor<1024xf32> {
  ^bb0(%i: tensor<1024xf32>):
    %e = "test.make"(%i) : (tensor<1024xf32>) -> tensor<1024xf32>
    kiln.yield %e : tensor<1024xf32>
  }
  return %c : tensor<1024xf32>
}

// -----

// A reshape views its source: the source stays live as long as the view is read.
// Sizes are rounded up to the 64-byte alignment (i1 takes a byte per element), in the
// arena and in its lower bound alike.
// CHECK-LABEL: func.func @reshape_extends_liveness
// CHECK-SAME: kiln.arena_lower_bound = 192 : i64, kiln.arena_size = 192 : i64
func.func @reshape_extends_liveness(%x: tensor<3xi1>) -> tensor<10xi1> {
  // CHECK: kiln.arena_offsets = array<i64: 0>
  %a = kiln.dispatch ins(%x : tensor<3xi1>) -> tensor<2x3xi1> {
  ^bb0(%i: tensor<3xi1>):
    %e = "test.make"() : () -> tensor<2x3xi1>
    kiln.yield %e : tensor<2x3xi1>
  }
  %v = tensor.collapse_shape %a [[0, 1]] : tensor<2x3xi1> into tensor<6xi1>
  // CHECK: kiln.arena_offsets = array<i64: 64>
  %b = kiln.dispatch ins(%x : tensor<3xi1>) -> tensor<4xi1> {
  ^bb0(%i: tensor<3xi1>):
    %e = "test.make"() : () -> tensor<4xi1>
    kiln.yield %e : tensor<4xi1>
  }
  // CHECK: kiln.arena_offsets = array<i64: 128>
  %c = kiln.dispatch ins(%v, %b : tensor<6xi1>, tensor<4xi1>) -> tensor<10xi1> {
  ^bb0(%i: tensor<6xi1>, %j: tensor<4xi1>):
    %e = "test.make"() : () -> tensor<10xi1>
    kiln.yield %e : tensor<10xi1>
  }
  return %c : tensor<10xi1>
}

// -----

func.func @unsized_result(%x: tensor<4xf32>) -> tensor<?xf32> {
  // expected-error @+1 {{'kiln.dispatch' op has a result of type 'tensor<?xf32>' whose size in bytes is not known}}
  %a = kiln.dispatch ins(%x : tensor<4xf32>) -> tensor<?xf32> {
  ^bb0(%i: tensor<4xf32>):
    %e = "test.make"() : () -> tensor<?xf32>
    kiln.yield %e : tensor<?xf32>
  }
  return %a : tensor<?xf32>
}

// -----

// A result returned as persistent state lives in its state slot: no arena space.
// CHECK-LABEL: func.func @state_takes_no_arena
// CHECK-SAME: kiln.arena_lower_bound = 64 : i64, kiln.arena_size = 64 : i64
func.func @state_takes_no_arena(%x: tensor<4xf32>, %s: tensor<4xf32> {kiln.state = "acc"}) -> (tensor<4xf32>, tensor<4xf32> {kiln.state = "acc"}) {
  // CHECK: kiln.arena_offsets = array<i64: 0>
  %n = kiln.dispatch ins(%s, %x : tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf32>, %b: tensor<4xf32>):
    %e = "test.make"() : () -> tensor<4xf32>
    kiln.yield %e : tensor<4xf32>
  }
  // CHECK: kiln.arena_offsets = array<i64: 0>
  %y = kiln.dispatch ins(%n : tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf32>):
    %e = "test.make"() : () -> tensor<4xf32>
    kiln.yield %e : tensor<4xf32>
  }
  return %y, %n : tensor<4xf32>, tensor<4xf32>
}

// -----

// Greedy by size: first fit in program order puts %b above %a and leaves %c no room
// below (256 bytes); placing %c (128 bytes) first lets %a sit under it and %b above:
// 192 bytes, the largest live set (%b and %c).
// CHECK-LABEL: func.func @by_size_beats_program_order
// CHECK-SAME: kiln.arena_lower_bound = 192 : i64, kiln.arena_size = 192 : i64
func.func @by_size_beats_program_order(%x: tensor<16xf32>) -> (tensor<16xf32>, tensor<32xf32>) {
  // CHECK: kiln.arena_offsets = array<i64: 0>
  %a = kiln.dispatch ins(%x : tensor<16xf32>) -> tensor<16xf32> {
  ^bb0(%i: tensor<16xf32>):
    %e = "test.make"(%i) : (tensor<16xf32>) -> tensor<16xf32>
    kiln.yield %e : tensor<16xf32>
  }
  // CHECK: kiln.arena_offsets = array<i64: 128>
  %b = kiln.dispatch ins(%a : tensor<16xf32>) -> tensor<16xf32> {
  ^bb0(%i: tensor<16xf32>):
    %e = "test.make"(%i) : (tensor<16xf32>) -> tensor<16xf32>
    kiln.yield %e : tensor<16xf32>
  }
  // CHECK: kiln.arena_offsets = array<i64: 0>
  %c = kiln.dispatch ins(%b : tensor<16xf32>) -> tensor<32xf32> {
  ^bb0(%i: tensor<16xf32>):
    %e = "test.make"(%i) : (tensor<16xf32>) -> tensor<32xf32>
    kiln.yield %e : tensor<32xf32>
  }
  return %b, %c : tensor<16xf32>, tensor<32xf32>
}

// -----

// Both greedy plans put %b right above %a, which leaves a 64-byte hole under %b and
// %d no room below 448 (512 bytes). The search backtracks and puts %b at the top of
// the arena instead: 448 bytes, the largest live set (%b, %c and %d).
// CHECK-LABEL: func.func @search_reaches_the_bound
// CHECK-SAME: kiln.arena_lower_bound = 448 : i64, kiln.arena_size = 448 : i64
func.func @search_reaches_the_bound(%x: tensor<48xf32>) -> (tensor<32xf32>, tensor<32xf32>) {
  // CHECK: kiln.arena_offsets = array<i64: 0>
  %a = kiln.dispatch ins(%x : tensor<48xf32>) -> tensor<48xf32> {
  ^bb0(%i: tensor<48xf32>):
    %e = "test.make"(%i) : (tensor<48xf32>) -> tensor<48xf32>
    kiln.yield %e : tensor<48xf32>
  }
  // CHECK: kiln.arena_offsets = array<i64: 256>
  %b = kiln.dispatch ins(%a : tensor<48xf32>) -> tensor<48xf32> {
  ^bb0(%i: tensor<48xf32>):
    %e = "test.make"(%i) : (tensor<48xf32>) -> tensor<48xf32>
    kiln.yield %e : tensor<48xf32>
  }
  // CHECK: kiln.arena_offsets = array<i64: 0, 128>
  %c, %d = kiln.dispatch ins(%b : tensor<48xf32>) -> tensor<32xf32>, tensor<32xf32> {
  ^bb0(%i: tensor<48xf32>):
    %e:2 = "test.make"(%i) : (tensor<48xf32>) -> (tensor<32xf32>, tensor<32xf32>)
    kiln.yield %e#0, %e#1 : tensor<32xf32>, tensor<32xf32>
  }
  return %c, %d : tensor<32xf32>, tensor<32xf32>
}
