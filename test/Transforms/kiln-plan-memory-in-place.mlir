// kiln-plan-memory: a result takes the storage of an input it reads only where it
// writes, when that dispatch is the input's last reader; and where it must not.
// RUN: kiln-opt %s --kiln-plan-memory --split-input-file --allow-unregistered-dialect | FileCheck %s

#id = affine_map<(i) -> (i)>

// %b = exp(%a) reads %a at the point it writes, and is %a's last reader: %b takes %a's
// bytes, and the two count once in the lower bound.
// CHECK-LABEL: func.func @pointwise_takes_dying_input
// CHECK-SAME: kiln.arena_in_place = 1 : i64, kiln.arena_lower_bound = 4096 : i64, kiln.arena_size = 4096 : i64
func.func @pointwise_takes_dying_input(%x: tensor<1024xf32>) -> tensor<1024xf32> {
  // CHECK: kiln.arena_offsets = array<i64: 0>
  %a = kiln.dispatch ins(%x : tensor<1024xf32>) -> tensor<1024xf32> {
  ^bb0(%i: tensor<1024xf32>):
    %e = tensor.empty() : tensor<1024xf32>
    %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
        ins(%i : tensor<1024xf32>) outs(%e : tensor<1024xf32>) {
    ^bb0(%v: f32, %o: f32):
      %s = math.sin %v : f32
      linalg.yield %s : f32
    } -> tensor<1024xf32>
    kiln.yield %r : tensor<1024xf32>
  }
  // CHECK: kiln.arena_offsets = array<i64: 0>
  %b = kiln.dispatch ins(%a : tensor<1024xf32>) -> tensor<1024xf32> {
  ^bb0(%i: tensor<1024xf32>):
    %e = tensor.empty() : tensor<1024xf32>
    %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
        ins(%i : tensor<1024xf32>) outs(%e : tensor<1024xf32>) {
    ^bb0(%v: f32, %o: f32):
      %s = math.exp %v : f32
      linalg.yield %s : f32
    } -> tensor<1024xf32>
    kiln.yield %r : tensor<1024xf32>
  }
  return %b : tensor<1024xf32>
}

// -----

#id = affine_map<(i) -> (i)>

// %a is read again after %b: %b must not overwrite it.
// CHECK-LABEL: func.func @not_when_read_later
// CHECK-SAME: kiln.arena_in_place = 0 : i64
func.func @not_when_read_later(%x: tensor<1024xf32>) -> tensor<1024xf32> {
  // CHECK: kiln.arena_offsets = array<i64: 0>
  %a = kiln.dispatch ins(%x : tensor<1024xf32>) -> tensor<1024xf32> {
  ^bb0(%i: tensor<1024xf32>):
    %e = "test.make"(%i) : (tensor<1024xf32>) -> tensor<1024xf32>
    kiln.yield %e : tensor<1024xf32>
  }
  // CHECK: kiln.arena_offsets = array<i64: 4096>
  %b = kiln.dispatch ins(%a : tensor<1024xf32>) -> tensor<1024xf32> {
  ^bb0(%i: tensor<1024xf32>):
    %e = tensor.empty() : tensor<1024xf32>
    %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
        ins(%i : tensor<1024xf32>) outs(%e : tensor<1024xf32>) {
    ^bb0(%v: f32, %o: f32):
      %s = math.exp %v : f32
      linalg.yield %s : f32
    } -> tensor<1024xf32>
    kiln.yield %r : tensor<1024xf32>
  }
  %c = kiln.dispatch ins(%a, %b : tensor<1024xf32>, tensor<1024xf32>) -> tensor<1024xf32> {
  ^bb0(%i: tensor<1024xf32>, %j: tensor<1024xf32>):
    %e = "test.make"(%i, %j) : (tensor<1024xf32>, tensor<1024xf32>) -> tensor<1024xf32>
    kiln.yield %e : tensor<1024xf32>
  }
  return %c : tensor<1024xf32>
}

// -----

#t = affine_map<(i, j) -> (j, i)>
#id2 = affine_map<(i, j) -> (i, j)>

// A transpose reads %a at (j, i) while writing (i, j): writing in place would clobber
// elements still to be read.
// CHECK-LABEL: func.func @not_for_a_transposed_read
// CHECK-SAME: kiln.arena_in_place = 0 : i64
func.func @not_for_a_transposed_read(%x: tensor<32x32xf32>) -> tensor<32x32xf32> {
  // CHECK: kiln.arena_offsets = array<i64: 0>
  %a = kiln.dispatch ins(%x : tensor<32x32xf32>) -> tensor<32x32xf32> {
  ^bb0(%i: tensor<32x32xf32>):
    %e = "test.make"(%i) : (tensor<32x32xf32>) -> tensor<32x32xf32>
    kiln.yield %e : tensor<32x32xf32>
  }
  // CHECK: kiln.arena_offsets = array<i64: 4096>
  %b = kiln.dispatch ins(%a : tensor<32x32xf32>) -> tensor<32x32xf32> {
  ^bb0(%i: tensor<32x32xf32>):
    %e = tensor.empty() : tensor<32x32xf32>
    %r = linalg.generic {indexing_maps = [#t, #id2], iterator_types = ["parallel", "parallel"]}
        ins(%i : tensor<32x32xf32>) outs(%e : tensor<32x32xf32>) {
    ^bb0(%v: f32, %o: f32):
      linalg.yield %v : f32
    } -> tensor<32x32xf32>
    kiln.yield %r : tensor<32x32xf32>
  }
  return %b : tensor<32x32xf32>
}

// -----

#id2 = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (i)>

// %a is read pointwise by the subtraction, but the same kernel reduces it first (a
// softmax's maximum): a kernel with a reduction is never in place.
// CHECK-LABEL: func.func @not_when_the_kernel_reduces
// CHECK-SAME: kiln.arena_in_place = 0 : i64
func.func @not_when_the_kernel_reduces(%x: tensor<8x128xf32>) -> tensor<8x128xf32> {
  // CHECK: kiln.arena_offsets = array<i64: 0>
  %a = kiln.dispatch ins(%x : tensor<8x128xf32>) -> tensor<8x128xf32> {
  ^bb0(%i: tensor<8x128xf32>):
    %e = "test.make"(%i) : (tensor<8x128xf32>) -> tensor<8x128xf32>
    kiln.yield %e : tensor<8x128xf32>
  }
  // CHECK: kiln.arena_offsets = array<i64: 4096>
  %b = kiln.dispatch ins(%a : tensor<8x128xf32>) -> tensor<8x128xf32> {
  ^bb0(%i: tensor<8x128xf32>):
    %rows = tensor.empty() : tensor<8xf32>
    %max = linalg.generic {indexing_maps = [#id2, #row], iterator_types = ["parallel", "reduction"]}
        ins(%i : tensor<8x128xf32>) outs(%rows : tensor<8xf32>) {
    ^bb0(%v: f32, %m: f32):
      %r = arith.maximumf %v, %m : f32
      linalg.yield %r : f32
    } -> tensor<8xf32>
    %e = tensor.empty() : tensor<8x128xf32>
    %r = linalg.generic {indexing_maps = [#id2, #row, #id2], iterator_types = ["parallel", "parallel"]}
        ins(%i, %max : tensor<8x128xf32>, tensor<8xf32>) outs(%e : tensor<8x128xf32>) {
    ^bb0(%v: f32, %m: f32, %o: f32):
      %d = arith.subf %v, %m : f32
      linalg.yield %d : f32
    } -> tensor<8x128xf32>
    kiln.yield %r : tensor<8x128xf32>
  }
  return %b : tensor<8x128xf32>
}

// -----

#id = affine_map<(i) -> (i)>

// Function arguments and state are not the arena's to give: the state update is
// written into its slot, and %y gets arena bytes of its own though it reads the
// argument %x and the state %s pointwise, last.
// CHECK-LABEL: func.func @not_for_arguments_or_state
// CHECK-SAME: kiln.arena_in_place = 0 : i64, kiln.arena_lower_bound = 4096 : i64, kiln.arena_size = 4096 : i64
func.func @not_for_arguments_or_state(%x: tensor<1024xf32>, %s: tensor<1024xf32> {kiln.state = "acc"})
    -> (tensor<1024xf32>, tensor<1024xf32> {kiln.state = "acc"}) {
  // CHECK: kiln.arena_offsets = array<i64: 0, 0>
  %y, %n = kiln.dispatch ins(%x, %s : tensor<1024xf32>, tensor<1024xf32>) -> tensor<1024xf32>, tensor<1024xf32> {
  ^bb0(%i: tensor<1024xf32>, %j: tensor<1024xf32>):
    %e = tensor.empty() : tensor<1024xf32>
    %r = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]}
        ins(%i, %j : tensor<1024xf32>, tensor<1024xf32>) outs(%e : tensor<1024xf32>) {
    ^bb0(%v: f32, %w: f32, %o: f32):
      %a = arith.addf %v, %w : f32
      linalg.yield %a : f32
    } -> tensor<1024xf32>
    kiln.yield %r, %r : tensor<1024xf32>, tensor<1024xf32>
  }
  return %y, %n : tensor<1024xf32>, tensor<1024xf32>
}

// -----

#id = affine_map<(i) -> (i)>

// %a is one of the dispatch's inputs twice, once through a reshape: the reshaped view
// may be read at other points, so neither gives its bytes.
// CHECK-LABEL: func.func @not_when_another_view_is_read
// CHECK-SAME: kiln.arena_in_place = 0 : i64
func.func @not_when_another_view_is_read(%x: tensor<1024xf32>) -> tensor<1024xf32> {
  // CHECK: kiln.arena_offsets = array<i64: 0>
  %a = kiln.dispatch ins(%x : tensor<1024xf32>) -> tensor<1024xf32> {
  ^bb0(%i: tensor<1024xf32>):
    %e = "test.make"(%i) : (tensor<1024xf32>) -> tensor<1024xf32>
    kiln.yield %e : tensor<1024xf32>
  }
  %v = tensor.expand_shape %a [[0, 1]] output_shape [32, 32] : tensor<1024xf32> into tensor<32x32xf32>
  // CHECK: kiln.arena_offsets = array<i64: 4096>
  %b = kiln.dispatch ins(%a, %v : tensor<1024xf32>, tensor<32x32xf32>) -> tensor<1024xf32> {
  ^bb0(%i: tensor<1024xf32>, %j: tensor<32x32xf32>):
    %e = tensor.empty() : tensor<1024xf32>
    %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
        ins(%i : tensor<1024xf32>) outs(%e : tensor<1024xf32>) {
    ^bb0(%p: f32, %o: f32):
      linalg.yield %p : f32
    } -> tensor<1024xf32>
    kiln.yield %r : tensor<1024xf32>
  }
  return %b : tensor<1024xf32>
}

// -----

#id = affine_map<(i) -> (i)>

// A narrowing conversion reads 4-byte elements and writes 2-byte ones: the bytes of
// point i differ, and so do the sizes.
// CHECK-LABEL: func.func @not_across_element_sizes
// CHECK-SAME: kiln.arena_in_place = 0 : i64
func.func @not_across_element_sizes(%x: tensor<1024xf32>) -> tensor<1024xf16> {
  %a = kiln.dispatch ins(%x : tensor<1024xf32>) -> tensor<1024xf32> {
  ^bb0(%i: tensor<1024xf32>):
    %e = "test.make"(%i) : (tensor<1024xf32>) -> tensor<1024xf32>
    kiln.yield %e : tensor<1024xf32>
  }
  // CHECK: kiln.arena_offsets = array<i64: 4096>
  %b = kiln.dispatch ins(%a : tensor<1024xf32>) -> tensor<1024xf16> {
  ^bb0(%i: tensor<1024xf32>):
    %e = tensor.empty() : tensor<1024xf16>
    %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
        ins(%i : tensor<1024xf32>) outs(%e : tensor<1024xf16>) {
    ^bb0(%p: f32, %o: f16):
      %t = arith.truncf %p : f32 to f16
      linalg.yield %t : f16
    } -> tensor<1024xf16>
    kiln.yield %r : tensor<1024xf16>
  }
  return %b : tensor<1024xf16>
}
