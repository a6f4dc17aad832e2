// kiln-interleave-weights: q4_0, q8_0, q5_0, q4_k and q6_k weights that only
// kiln.dequantize and kiln.gather read are stored with the blocks of 16 rows interleaved
// (q4_0x16, q8_0x16, q5_0x16, q4_kx16, q6_kx16), converted from the file's bytes.
// RUN: kiln-opt %s --kiln-interleave-weights --split-input-file | FileCheck %s

// CHECK-LABEL: func.func @projection_is_interleaved
func.func @projection_is_interleaved(%x: tensor<1x64xf32>) -> tensor<32x64xf32> {
  // CHECK: %[[W:.*]] = kiln.weight "w" from "m.gguf"[128] {source_scheme = "q4_0"} : tensor<32x64x!kiln.quant<q4_0x16>>
  // CHECK: kiln.dequantize %[[W]] : tensor<32x64x!kiln.quant<q4_0x16>>
  %w = kiln.weight "w" from "m.gguf"[128] : tensor<32x64x!kiln.quant<q4_0>>
  %d = kiln.dequantize %w : tensor<32x64x!kiln.quant<q4_0>>
  return %d : tensor<32x64xf32>
}

// -----

// CHECK-LABEL: func.func @q8_0_is_interleaved
func.func @q8_0_is_interleaved() -> tensor<16x32xf32> {
  // CHECK: %[[W:.*]] = kiln.weight "w" from "m.gguf"[0] {source_scheme = "q8_0"} : tensor<16x32x!kiln.quant<q8_0x16>>
  // CHECK: kiln.dequantize %[[W]] : tensor<16x32x!kiln.quant<q8_0x16>>
  %w = kiln.weight "w" from "m.gguf"[0] : tensor<16x32x!kiln.quant<q8_0>>
  %d = kiln.dequantize %w : tensor<16x32x!kiln.quant<q8_0>>
  return %d : tensor<16x32xf32>
}

// -----

// CHECK-LABEL: func.func @q5_0_is_interleaved
func.func @q5_0_is_interleaved() -> tensor<48x64xf32> {
  // CHECK: %[[W:.*]] = kiln.weight "w" from "m.gguf"[0] {source_scheme = "q5_0"} : tensor<48x64x!kiln.quant<q5_0x16>>
  // CHECK: kiln.dequantize %[[W]] : tensor<48x64x!kiln.quant<q5_0x16>>
  %w = kiln.weight "w" from "m.gguf"[0] : tensor<48x64x!kiln.quant<q5_0>>
  %d = kiln.dequantize %w : tensor<48x64x!kiln.quant<q5_0>>
  return %d : tensor<48x64xf32>
}

// -----

// CHECK-LABEL: func.func @q4_k_is_interleaved
func.func @q4_k_is_interleaved() -> tensor<32x512xf32> {
  // CHECK: %[[W:.*]] = kiln.weight "w" from "m.gguf"[0] {source_scheme = "q4_k"} : tensor<32x512x!kiln.quant<q4_kx16>>
  // CHECK: kiln.dequantize %[[W]] : tensor<32x512x!kiln.quant<q4_kx16>>
  %w = kiln.weight "w" from "m.gguf"[0] : tensor<32x512x!kiln.quant<q4_k>>
  %d = kiln.dequantize %w : tensor<32x512x!kiln.quant<q4_k>>
  return %d : tensor<32x512xf32>
}

// -----

// CHECK-LABEL: func.func @q6_k_is_interleaved
func.func @q6_k_is_interleaved() -> tensor<16x256xf32> {
  // CHECK: %[[W:.*]] = kiln.weight "w" from "m.gguf"[0] {source_scheme = "q6_k"} : tensor<16x256x!kiln.quant<q6_kx16>>
  // CHECK: kiln.dequantize %[[W]] : tensor<16x256x!kiln.quant<q6_kx16>>
  %w = kiln.weight "w" from "m.gguf"[0] : tensor<16x256x!kiln.quant<q6_k>>
  %d = kiln.dequantize %w : tensor<16x256x!kiln.quant<q6_k>>
  return %d : tensor<16x256xf32>
}

// -----

// Rows that are not a multiple of 16, other formats and other ranks keep ggml's layout.
// CHECK-LABEL: func.func @left_alone
func.func @left_alone() -> (tensor<24x64xf32>, tensor<32x256xf32>, tensor<2x16x32xf32>) {
  // CHECK: kiln.weight "odd" from "m.gguf"[0] : tensor<24x64x!kiln.quant<q4_0>>
  // CHECK: kiln.weight "k" from "m.gguf"[0] : tensor<32x256x!kiln.quant<q5_1>>
  // CHECK: kiln.weight "batched" from "m.gguf"[0] : tensor<2x16x32x!kiln.quant<q4_0>>
  // CHECK-NOT: {{q4_0x16|q8_0x16|q5_0x16|q4_kx16|q6_kx16}}
  %a = kiln.weight "odd" from "m.gguf"[0] : tensor<24x64x!kiln.quant<q4_0>>
  %da = kiln.dequantize %a : tensor<24x64x!kiln.quant<q4_0>>
  %b = kiln.weight "k" from "m.gguf"[0] : tensor<32x256x!kiln.quant<q5_1>>
  %db = kiln.dequantize %b : tensor<32x256x!kiln.quant<q5_1>>
  %c = kiln.weight "batched" from "m.gguf"[0] : tensor<2x16x32x!kiln.quant<q4_0>>
  %dc = kiln.dequantize %c : tensor<2x16x32x!kiln.quant<q4_0>>
  return %da, %db, %dc : tensor<24x64xf32>, tensor<32x256xf32>, tensor<2x16x32xf32>
}

// -----

// A table that a quantized gather also reads (tied embeddings) is interleaved too: the
// gather decodes its rows from the interleaved blocks.
// CHECK-LABEL: func.func @gathered_table_is_interleaved
func.func @gathered_table_is_interleaved(%ids: tensor<4xi32>) -> (tensor<4x64xf32>, tensor<32x64xf32>) {
  // CHECK: %[[W:.*]] = kiln.weight "emb" from "m.gguf"[0] {source_scheme = "q4_0"} : tensor<32x64x!kiln.quant<q4_0x16>>
  // CHECK: kiln.gather %[[W]][%{{.*}}] : tensor<32x64x!kiln.quant<q4_0x16>>, tensor<4xi32>
  // CHECK: kiln.dequantize %[[W]] : tensor<32x64x!kiln.quant<q4_0x16>>
  %w = kiln.weight "emb" from "m.gguf"[0] : tensor<32x64x!kiln.quant<q4_0>>
  %g = kiln.gather %w[%ids] : tensor<32x64x!kiln.quant<q4_0>>, tensor<4xi32>
  %d = kiln.dequantize %w : tensor<32x64x!kiln.quant<q4_0>>
  return %g, %d : tensor<4x64xf32>, tensor<32x64xf32>
}

// -----

// A weight something else reads (here a tensor.extract_slice of the packed tensor) keeps
// ggml's layout.
// CHECK-LABEL: func.func @other_reader_is_left_alone
func.func @other_reader_is_left_alone() -> tensor<16x64x!kiln.quant<q4_0>> {
  // CHECK: kiln.weight "w" from "m.gguf"[0] : tensor<32x64x!kiln.quant<q4_0>>
  // CHECK-NOT: q4_0x16
  %w = kiln.weight "w" from "m.gguf"[0] : tensor<32x64x!kiln.quant<q4_0>>
  %s = tensor.extract_slice %w[0, 0] [16, 64] [1, 1] : tensor<32x64x!kiln.quant<q4_0>> to tensor<16x64x!kiln.quant<q4_0>>
  return %s : tensor<16x64x!kiln.quant<q4_0>>
}
