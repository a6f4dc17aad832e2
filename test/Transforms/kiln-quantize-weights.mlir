// kiln-quantize-weights: float weights of products become [N, K] weights packed along K
// (q8_0 for int8, q4_0 for int4) read through kiln.dequantize; embedding tables and
// output heads stay float unless keep-float says otherwise.
// RUN: kiln-opt %s --kiln-quantize-weights --split-input-file | FileCheck %s
// RUN: kiln-opt %s --kiln-quantize-weights="scheme=int4 keep-float=none" --split-input-file | FileCheck %s --check-prefix=ALL
// RUN: kiln-opt %s --kiln-quantize-weights="keep-float=embeddings,intermediate" --split-input-file | FileCheck %s --check-prefix=NAMED
// RUN: kiln-opt %s --kiln-quantize-weights="scheme=int4-zp keep-float=none" --split-input-file | FileCheck %s --check-prefix=ZP

// A BERT Linear after kiln-fold-weight-layouts: [in, out] as the permuted [out, in]
// file tensor. Packed along K, the file's own layout: no permutation left.
// CHECK-LABEL: func.func @permuted_weight_is_packed_in_file_order
// CHECK: %[[W:.*]] = kiln.weight "layer.0.attention.query.weight" from "m.safetensors"[0] {source_scheme = "f32"} : tensor<32x64x!kiln.quant<q8_0>>
// CHECK: %[[D:.*]] = kiln.dequantize %[[W]] : tensor<32x64x!kiln.quant<q8_0>>
// CHECK: linalg.matmul indexing_maps = [#map, #map1, #map2] ins(%{{.*}}, %[[D]] : tensor<4x64xf32>, tensor<32x64xf32>)
// CHECK-NOT: tensor<64x32xf32>
// ALL-LABEL: func.func @permuted_weight_is_packed_in_file_order
// ALL: kiln.weight "layer.0.attention.query.weight" from "m.safetensors"[0] {source_scheme = "f32"} : tensor<32x64x!kiln.quant<q4_0>>
// ZP-LABEL: func.func @permuted_weight_is_packed_in_file_order
// ZP: kiln.weight "layer.0.attention.query.weight" from "m.safetensors"[0] {source_scheme = "f32"} : tensor<32x64x!kiln.quant<q4_1>>
func.func @permuted_weight_is_packed_in_file_order(%x: tensor<4x64xf32>) -> tensor<4x32xf32> {
  %w = kiln.weight "layer.0.attention.query.weight" from "m.safetensors"[0] {permutation = array<i64: 1, 0>} : tensor<64x32xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x32xf32>) -> tensor<4x32xf32>
  %y = linalg.matmul ins(%x, %w : tensor<4x64xf32>, tensor<64x32xf32>) outs(%acc : tensor<4x32xf32>) -> tensor<4x32xf32>
  %s = tensor.empty() : tensor<4x32xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "reduction"]} ins(%y : tensor<4x32xf32>) outs(%s : tensor<4x32xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.addf %a, %o : f32
    linalg.yield %m : f32
  } -> tensor<4x32xf32>
  return %r : tensor<4x32xf32>
}

// -----

// An ONNX MatMul's [K, N] initializer read by a generic contraction: the writer
// transposes it (permutation) before packing, and the map reads [N, K].
// CHECK-LABEL: func.func @onnx_initializer_is_transposed_then_packed
// CHECK: %[[W:.*]] = kiln.weight "fc1.weight" from "m.onnx"[64] {permutation = array<i64: 1, 0>, source_scheme = "f32"} : tensor<16x96x!kiln.quant<q8_0>>
// CHECK: %[[D:.*]] = kiln.dequantize %[[W]]
// CHECK: linalg.generic {indexing_maps = [#map, #map1, #map2], {{.*}} ins(%{{.*}}, %[[D]] : tensor<2x96xf32>, tensor<16x96xf32>)
// CHECK-DAG: #map1 = affine_map<(d0, d1, d2) -> (d1, d2)>
func.func @onnx_initializer_is_transposed_then_packed(%x: tensor<2x96xf32>, %acc: tensor<2x16xf32>) -> tensor<2x16xf32> {
  %w = kiln.weight "fc1.weight" from "m.onnx"[64] : tensor<96x16xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (k, n)>, affine_map<(m, n, k) -> (m, n)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : tensor<2x96xf32>, tensor<96x16xf32>) outs(%acc : tensor<2x16xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  } -> tensor<2x16xf32>
  %e = tensor.empty() : tensor<2x16xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "reduction"]} ins(%y : tensor<2x16xf32>) outs(%e : tensor<2x16xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.addf %a, %o : f32
    linalg.yield %m : f32
  } -> tensor<2x16xf32>
  return %r : tensor<2x16xf32>
}

// -----

// An F16 GGUF projection: [N, K] read through a widening copy, which goes away.
// CHECK-LABEL: func.func @f16_weight_behind_a_widening_copy
// CHECK: %[[W:.*]] = kiln.weight "blk.0.ffn_up.weight" from "m.gguf"[0] {source_scheme = "f16"} : tensor<48x32x!kiln.quant<q8_0>>
// CHECK-NOT: arith.extf
// CHECK-NOT: tensor<48x32xf16>
// NAMED-LABEL: func.func @f16_weight_behind_a_widening_copy
// NAMED: source_scheme = "f16"
func.func @f16_weight_behind_a_widening_copy(%x: tensor<1x32xf32>, %acc: tensor<1x48xf32>) -> tensor<1x48xf32> {
  %w = kiln.weight "blk.0.ffn_up.weight" from "m.gguf"[0] : tensor<48x32xf16>
  %e = tensor.empty() : tensor<48x32xf32>
  %wf = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%w : tensor<48x32xf16>) outs(%e : tensor<48x32xf32>) {
  ^bb0(%a: f16, %o: f32):
    %f = arith.extf %a : f16 to f32
    linalg.yield %f : f32
  } -> tensor<48x32xf32>
  %y = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>] ins(%x, %wf : tensor<1x32xf32>, tensor<48x32xf32>) outs(%acc : tensor<1x48xf32>) -> tensor<1x48xf32>
  %s = tensor.empty() : tensor<1x48xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "reduction"]} ins(%y : tensor<1x48xf32>) outs(%s : tensor<1x48xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.addf %a, %o : f32
    linalg.yield %m : f32
  } -> tensor<1x48xf32>
  return %r : tensor<1x48xf32>
}

// -----

// The output head (a product reaching the result through a reshape and a bias add) and
// the tied embedding table stay float by default; keep-float=none packs both, each use
// its own weight.
// CHECK-LABEL: func.func @head_and_embeddings_stay_float
// CHECK: kiln.weight "token_embd.weight" from "m.gguf"[0] : tensor<64x32xf32>
// CHECK-NOT: kiln.quant
// ALL-LABEL: func.func @head_and_embeddings_stay_float
// ALL-DAG: kiln.weight "token_embd.weight" from "m.gguf"[0] {source_scheme = "f32"} : tensor<64x32x!kiln.quant<q4_0>>
// ALL-DAG: kiln.weight "token_embd.weight" from "m.gguf"[0] {source_scheme = "f32"} : tensor<64x32x!kiln.quant<q4_0>>
// ALL-NOT: kiln.weight {{.*}} : tensor<64x32xf32>
func.func @head_and_embeddings_stay_float(%ids: tensor<2xi32>, %acc: tensor<2x64xf32>, %bias: tensor<2x64xf32>) -> tensor<1x2x64xf32> {
  %w = kiln.weight "token_embd.weight" from "m.gguf"[0] : tensor<64x32xf32>
  %x = kiln.gather %w[%ids] : tensor<64x32xf32>, tensor<2xi32>
  %y = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>] ins(%x, %w : tensor<2x32xf32>, tensor<64x32xf32>) outs(%acc : tensor<2x64xf32>) -> tensor<2x64xf32>
  %e = tensor.empty() : tensor<2x64xf32>
  %b = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%y, %bias : tensor<2x64xf32>, tensor<2x64xf32>) outs(%e : tensor<2x64xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %s = arith.addf %a, %c : f32
    linalg.yield %s : f32
  } -> tensor<2x64xf32>
  %r = tensor.expand_shape %b [[0, 1], [2]] output_shape [1, 2, 64] : tensor<2x64xf32> into tensor<1x2x64xf32>
  return %r : tensor<1x2x64xf32>
}

// -----

// K not a multiple of 32 (no whole blocks) and non-float weights stay as they are; a
// weight named in keep-float stays float.
// CHECK-LABEL: func.func @left_float
// CHECK: kiln.weight "odd" from "m.onnx"[0] : tensor<40x8xf32>
// CHECK: kiln.weight "layer.intermediate.dense.weight" from "m.onnx"[0] {permutation = array<i64: 1, 0>, source_scheme = "f32"} : tensor<8x64x!kiln.quant<q8_0>>
// CHECK: kiln.weight "int" from "m.onnx"[0] : tensor<32x8xi32>
// NAMED-LABEL: func.func @left_float
// NAMED: kiln.weight "layer.intermediate.dense.weight" from "m.onnx"[0] : tensor<64x8xf32>
// ALL-LABEL: func.func @left_float
// ALL: kiln.weight "odd" from "m.onnx"[0] : tensor<40x8xf32>
// ALL: kiln.weight "layer.intermediate.dense.weight" from "m.onnx"[0] {permutation = array<i64: 1, 0>, source_scheme = "f32"} : tensor<8x64x!kiln.quant<q4_0>>
func.func @left_float(%x: tensor<2x40xf32>, %x2: tensor<2x64xf32>, %xi: tensor<2x32xi32>, %acc: tensor<2x8xf32>, %acci: tensor<2x8xi32>) -> (tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xi32>) {
  %w = kiln.weight "odd" from "m.onnx"[0] : tensor<40x8xf32>
  %y = linalg.matmul ins(%x, %w : tensor<2x40xf32>, tensor<40x8xf32>) outs(%acc : tensor<2x8xf32>) -> tensor<2x8xf32>
  %w2 = kiln.weight "layer.intermediate.dense.weight" from "m.onnx"[0] : tensor<64x8xf32>
  %y2 = linalg.matmul ins(%x2, %w2 : tensor<2x64xf32>, tensor<64x8xf32>) outs(%acc : tensor<2x8xf32>) -> tensor<2x8xf32>
  %wi = kiln.weight "int" from "m.onnx"[0] : tensor<32x8xi32>
  %yi = linalg.matmul ins(%xi, %wi : tensor<2x32xi32>, tensor<32x8xi32>) outs(%acci : tensor<2x8xi32>) -> tensor<2x8xi32>
  %e = tensor.empty() : tensor<2x8xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "reduction"]} ins(%y : tensor<2x8xf32>) outs(%e : tensor<2x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.addf %a, %o : f32
    linalg.yield %m : f32
  } -> tensor<2x8xf32>
  %r2 = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "reduction"]} ins(%y2 : tensor<2x8xf32>) outs(%e : tensor<2x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.addf %a, %o : f32
    linalg.yield %m : f32
  } -> tensor<2x8xf32>
  %ei = tensor.empty() : tensor<2x8xi32>
  %ri = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "reduction"]} ins(%yi : tensor<2x8xi32>) outs(%ei : tensor<2x8xi32>) {
  ^bb0(%a: i32, %o: i32):
    %m = arith.addi %a, %o : i32
    linalg.yield %m : i32
  } -> tensor<2x8xi32>
  return %r, %r2, %ri : tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xi32>
}
