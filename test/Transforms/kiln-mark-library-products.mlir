// kiln-mark-library-products: float32 GEMM dispatches a GPU library computes, marked
// with how to call it, and kept apart from their epilogues by kiln-fuse-epilogues.
// RUN: kiln-opt %s --linalg-generalize-named-ops --kiln-form-dispatches --kiln-fuse-elementwise \
// RUN:   --kiln-mark-library-products="min-flops=4096" --kiln-fuse-epilogues --split-input-file \
// RUN:   | FileCheck %s
// Without the marking pass the same epilogue is fused (the contrast the first case needs).
// RUN: kiln-opt %s --linalg-generalize-named-ops --kiln-form-dispatches --kiln-fuse-elementwise \
// RUN:   --kiln-fuse-epilogues --split-input-file | FileCheck %s --check-prefix=FUSED

// A matmul with a bias epilogue: the GEMM is marked (A and B the dispatch's inputs 0
// and 1, B read k x n) and its epilogue stays a dispatch of its own.
// CHECK-LABEL: func.func @gemm_with_bias
// CHECK: %[[MM:.*]] = kiln.dispatch ins(%arg0, %arg1 : tensor<16x32xf32>, tensor<32x64xf32>) -> tensor<16x64xf32> attributes {kiln.library = {a = 0 : i64, a_batch_stride = 0 : i64, b = 1 : i64, b_batch_stride = 0 : i64, batch = 1 : i64, function = "cublas.gemm", k = 32 : i64, m = 16 : i64, n = 64 : i64, transpose_b = false}}
// CHECK: kiln.dispatch ins(%[[MM]], %arg2 : tensor<16x64xf32>, tensor<64xf32>)
// CHECK-NOT: kiln.library
// FUSED-LABEL: func.func @gemm_with_bias
// FUSED: kiln.dispatch ins(%arg0, %arg1, %arg2 :
// FUSED-NOT: kiln.dispatch
// FUSED-LABEL: func.func @transposed_weight
func.func @gemm_with_bias(%x: tensor<16x32xf32>, %w: tensor<32x64xf32>, %b: tensor<64xf32>) -> tensor<16x64xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<16x64xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<16x64xf32>) -> tensor<16x64xf32>
  %mm = linalg.matmul ins(%x, %w : tensor<16x32xf32>, tensor<32x64xf32>) outs(%acc : tensor<16x64xf32>) -> tensor<16x64xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(m, n) -> (m, n)>, affine_map<(m, n) -> (n)>, affine_map<(m, n) -> (m, n)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%mm, %b : tensor<16x64xf32>, tensor<64xf32>) outs(%e : tensor<16x64xf32>) {
  ^bb0(%p: f32, %q: f32, %out: f32):
    %s = arith.addf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<16x64xf32>
  return %y : tensor<16x64xf32>
}

// -----

// A weight stored transposed (n x k, as kiln-fold-weight-layouts leaves ONNX's
// Gemm(transB=1) and every GGUF projection): transpose_b. The operands' order in the
// body does not matter: A is the one indexed by m.
// CHECK-LABEL: func.func @transposed_weight
// CHECK: kiln.library = {a = 1 : i64, a_batch_stride = 0 : i64, b = 0 : i64, b_batch_stride = 0 : i64, batch = 1 : i64, function = "cublas.gemm", k = 32 : i64, m = 8 : i64, n = 24 : i64, transpose_b = true}
func.func @transposed_weight(%w: tensor<24x32xf32>, %x: tensor<8x32xf32>) -> tensor<8x24xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<8x24xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<8x24xf32>) -> tensor<8x24xf32>
  %mm = linalg.generic {indexing_maps = [affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (m, n)>],
                        iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%w, %x : tensor<24x32xf32>, tensor<8x32xf32>) outs(%acc : tensor<8x24xf32>) {
  ^bb0(%p: f32, %q: f32, %out: f32):
    %m = arith.mulf %q, %p : f32
    %s = arith.addf %out, %m : f32
    linalg.yield %s : f32
  } -> tensor<8x24xf32>
  return %mm : tensor<8x24xf32>
}

// -----

// Batched: both operands batched (attention's scores), and a weight shared by every
// batch (stride 0).
// CHECK-LABEL: func.func @batched
// CHECK: kiln.library = {a = 0 : i64, a_batch_stride = 128 : i64, b = 1 : i64, b_batch_stride = 256 : i64, batch = 6 : i64, function = "cublas.gemm", k = 16 : i64, m = 8 : i64, n = 16 : i64, transpose_b = false}
// CHECK: kiln.library = {a = 0 : i64, a_batch_stride = 128 : i64, b = 1 : i64, b_batch_stride = 0 : i64, batch = 6 : i64, function = "cublas.gemm", k = 16 : i64, m = 8 : i64, n = 16 : i64, transpose_b = true}
func.func @batched(%a: tensor<2x3x8x16xf32>, %b: tensor<2x3x16x16xf32>, %w: tensor<16x16xf32>) -> (tensor<2x3x8x16xf32>, tensor<2x3x8x16xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x3x8x16xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<2x3x8x16xf32>) -> tensor<2x3x8x16xf32>
  %both = linalg.generic {indexing_maps = [affine_map<(b, h, m, n, k) -> (b, h, m, k)>, affine_map<(b, h, m, n, k) -> (b, h, k, n)>, affine_map<(b, h, m, n, k) -> (b, h, m, n)>],
                          iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%a, %b : tensor<2x3x8x16xf32>, tensor<2x3x16x16xf32>) outs(%acc : tensor<2x3x8x16xf32>) {
  ^bb0(%p: f32, %q: f32, %out: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %out, %m : f32
    linalg.yield %s : f32
  } -> tensor<2x3x8x16xf32>
  %acc2 = linalg.fill ins(%zero : f32) outs(%e : tensor<2x3x8x16xf32>) -> tensor<2x3x8x16xf32>
  %shared = linalg.generic {indexing_maps = [affine_map<(b, h, m, n, k) -> (b, h, m, k)>, affine_map<(b, h, m, n, k) -> (n, k)>, affine_map<(b, h, m, n, k) -> (b, h, m, n)>],
                            iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%a, %w : tensor<2x3x8x16xf32>, tensor<16x16xf32>) outs(%acc2 : tensor<2x3x8x16xf32>) {
  ^bb0(%p: f32, %q: f32, %out: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %out, %m : f32
    linalg.yield %s : f32
  } -> tensor<2x3x8x16xf32>
  return %both, %shared : tensor<2x3x8x16xf32>, tensor<2x3x8x16xf32>
}

// -----

// Not marked: below min-flops (2*4*8*8 = 512); f16 operands; an initial value that is
// not zero (a bias folded into the accumulator); A read transposed (k x m); a batch
// that only one operand has in part (A batched over h alone).
// CHECK-LABEL: func.func @not_library_gemms
// CHECK-NOT: kiln.library
// CHECK: return
func.func @not_library_gemms(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>, %xh: tensor<64x64xf16>, %wh: tensor<64x64xf16>,
                             %xf: tensor<64x64xf32>, %wf: tensor<64x64xf32>, %a3: tensor<3x8x64xf32>, %b23: tensor<2x3x64x64xf32>)
    -> (tensor<4x8xf32>, tensor<64x64xf16>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<2x3x8x64xf32>) {
  %zero = arith.constant 0.0 : f32
  %zh = arith.constant 0.0 : f16
  %one = arith.constant 1.0 : f32
  %e = tensor.empty() : tensor<4x8xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  %small = linalg.matmul ins(%x, %w : tensor<4x8xf32>, tensor<8x8xf32>) outs(%acc : tensor<4x8xf32>) -> tensor<4x8xf32>
  %eh = tensor.empty() : tensor<64x64xf16>
  %acch = linalg.fill ins(%zh : f16) outs(%eh : tensor<64x64xf16>) -> tensor<64x64xf16>
  %half = linalg.matmul ins(%xh, %wh : tensor<64x64xf16>, tensor<64x64xf16>) outs(%acch : tensor<64x64xf16>) -> tensor<64x64xf16>
  %ef = tensor.empty() : tensor<64x64xf32>
  %ones = linalg.fill ins(%one : f32) outs(%ef : tensor<64x64xf32>) -> tensor<64x64xf32>
  %biased = linalg.matmul ins(%xf, %wf : tensor<64x64xf32>, tensor<64x64xf32>) outs(%ones : tensor<64x64xf32>) -> tensor<64x64xf32>
  %accf = linalg.fill ins(%zero : f32) outs(%ef : tensor<64x64xf32>) -> tensor<64x64xf32>
  %ta = linalg.generic {indexing_maps = [affine_map<(m, n, k) -> (k, m)>, affine_map<(m, n, k) -> (k, n)>, affine_map<(m, n, k) -> (m, n)>],
                        iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%xf, %wf : tensor<64x64xf32>, tensor<64x64xf32>) outs(%accf : tensor<64x64xf32>) {
  ^bb0(%p: f32, %q: f32, %out: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %out, %m : f32
    linalg.yield %s : f32
  } -> tensor<64x64xf32>
  %e4 = tensor.empty() : tensor<2x3x8x64xf32>
  %acc4 = linalg.fill ins(%zero : f32) outs(%e4 : tensor<2x3x8x64xf32>) -> tensor<2x3x8x64xf32>
  %part = linalg.generic {indexing_maps = [affine_map<(b, h, m, n, k) -> (h, m, k)>, affine_map<(b, h, m, n, k) -> (b, h, k, n)>, affine_map<(b, h, m, n, k) -> (b, h, m, n)>],
                          iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%a3, %b23 : tensor<3x8x64xf32>, tensor<2x3x64x64xf32>) outs(%acc4 : tensor<2x3x8x64xf32>) {
  ^bb0(%p: f32, %q: f32, %out: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %out, %m : f32
    linalg.yield %s : f32
  } -> tensor<2x3x8x64xf32>
  return %small, %half, %biased, %ta, %part : tensor<4x8xf32>, tensor<64x64xf16>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<2x3x8x64xf32>
}
