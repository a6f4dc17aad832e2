// Every verifier and type-inference error of the kiln dialect.
// RUN: kiln-opt %s -split-input-file -verify-diagnostics --allow-unregistered-dialect

// expected-error @+1 {{q4_0 has a fixed block size of 32 elements; it takes no group size}}
func.func private @f() -> tensor<32x!kiln.quant<q4_0, group = 64>>

// -----

// expected-error @+1 {{group-wise scheme int4 needs a positive group size, got 0}}
func.func private @f() -> tensor<32x!kiln.quant<int4>>

// -----

// expected-error @+1 {{unknown quantization scheme 'q3_k'; expected one of q8_0, q4_0, q4_k, q6_k, int8, int4, q5_0, q5_1}}
func.func private @f() -> tensor<32x!kiln.quant<q3_k>>

// -----

// expected-error @+1 {{'kiln.weight' op needs a non-empty name}}
%0 = kiln.weight "" from "m.gguf"[0] : tensor<4xf32>

// -----

// expected-error @+1 {{'kiln.weight' op needs a non-empty source file}}
%0 = kiln.weight "w" from ""[0] : tensor<4xf32>

// -----

// expected-error @+1 {{'kiln.weight' op attribute 'offset' failed to satisfy constraint}}
%0 = kiln.weight "w" from "m.gguf"[-8] : tensor<4xf32>

// -----

// expected-error @+1 {{'kiln.weight' op has a permutation that is not one of [0, 2)}}
%0 = kiln.weight "w" from "m.safetensors"[0] {permutation = array<i64: 1, 1>} : tensor<4x8xf32>

// -----

// expected-error @+1 {{'kiln.weight' op has a permutation of 3 dimensions for a tensor of rank 2}}
%0 = kiln.weight "w" from "m.safetensors"[0] {permutation = array<i64: 2, 0, 1>} : tensor<4x8xf32>

// -----

// AWQ's input_scale: only floats the writer can scale, one factor per innermost element.
// expected-error @+1 {{'kiln.weight' op can scale only f32 weights or float bytes it packs (source_scheme f32, f16 or bf16), got 'tensor<16x32x!kiln.quant<q4_0>>'}}
%0 = kiln.weight "w" from "m.gguf"[0] {input_scale = array<f32: 1.0>} : tensor<16x32x!kiln.quant<q4_0>>

// -----

// expected-error @+1 {{'kiln.weight' op can scale only f32 weights or float bytes it packs (source_scheme f32, f16 or bf16), got 'tensor<4xf16>'}}
%0 = kiln.weight "w" from "m.safetensors"[0] {input_scale = array<f32: 1.0, 2.0, 3.0, 4.0>} : tensor<4xf16>

// -----

// expected-error @+1 {{'kiln.weight' op has 2 input_scale values for 'tensor<16x32x!kiln.quant<q4_0>>' (expected one per element of the innermost dimension)}}
%0 = kiln.weight "w" from "m.safetensors"[0] {input_scale = array<f32: 1.0, 2.0>, source_scheme = "f32"} : tensor<16x32x!kiln.quant<q4_0>>

// -----

// expected-error @+1 {{'kiln.weight' op cannot permute packed (!kiln.quant) elements}}
%0 = kiln.weight "w" from "m.gguf"[0] {permutation = array<i64: 1, 0>} : tensor<32x32x!kiln.quant<q4_0>>

// -----

// expected-error @+1 {{'kiln.weight' op innermost dimension 48 is not a multiple of the q4_0 block size 32}}
%0 = kiln.weight "w" from "m.gguf"[0] : tensor<2x48x!kiln.quant<q4_0>>

// -----

// expected-error @+1 {{'kiln.weight' op a quantized tensor needs at least one dimension, got a scalar}}
%0 = kiln.weight "w" from "m.gguf"[0] : tensor<!kiln.quant<q8_0>>

// -----

// expected-error @+1 {{'kiln.weight' op expects a float, integer or !kiln.quant element type, got 'index'}}
%0 = kiln.weight "w" from "m.gguf"[0] : tensor<4xindex>

// -----

// expected-error @+1 {{'kiln.weight' op result #0 must be statically shaped tensor}}
%0 = kiln.weight "w" from "m.gguf"[0] : tensor<?x4xf32>

// -----

func.func @f(%x: tensor<4x32xf32>) {
  // expected-error @+1 {{'kiln.dequantize' op expects an input with a !kiln.quant element type, got 'tensor<4x32xf32>'}}
  %0 = kiln.dequantize %x : tensor<4x32xf32>
  return
}

// -----

func.func @f(%x: tensor<4x40x!kiln.quant<q8_0>>) {
  // expected-error @+1 {{'kiln.dequantize' op innermost dimension 40 is not a multiple of the q8_0 block size 32}}
  %0 = kiln.dequantize %x : tensor<4x40x!kiln.quant<q8_0>>
  return
}

// -----

func.func @f(%x: tensor<4x32x!kiln.quant<q4_0>>, %s: tensor<4x1xf32>) {
  // expected-error @+1 {{'kiln.dequantize' op q4_0 keeps its scales inside its blocks; it takes no scales or zero_points operand}}
  %0 = kiln.dequantize %x scales(%s : tensor<4x1xf32>) : tensor<4x32x!kiln.quant<q4_0>>
  return
}

// -----

func.func @f(%x: tensor<4x256x!kiln.quant<int4, group = 128>>) {
  // expected-error @+1 {{'kiln.dequantize' op group-wise int4 needs a scales operand}}
  %0 = kiln.dequantize %x : tensor<4x256x!kiln.quant<int4, group = 128>>
  return
}

// -----

func.func @f(%x: tensor<4x256x!kiln.quant<int4, group = 128>>, %s: tensor<4x3xf32>) {
  // expected-error @+1 {{'kiln.dequantize' op expects scales of shape [4, 2] (one per group of 128), got [4, 3]}}
  %0 = kiln.dequantize %x scales(%s : tensor<4x3xf32>) : tensor<4x256x!kiln.quant<int4, group = 128>>
  return
}

// -----

func.func @f(%x: tensor<4x256x!kiln.quant<int8, group = 128>>, %s: tensor<4x2xf32>, %z: tensor<2x4xi8>) {
  // expected-error @+1 {{'kiln.dequantize' op expects zero_points shaped like scales [4, 2], got [2, 4]}}
  %0 = kiln.dequantize %x scales(%s : tensor<4x2xf32>) zero_points(%z : tensor<2x4xi8>) : tensor<4x256x!kiln.quant<int8, group = 128>>
  return
}

// -----

func.func @f(%x: tensor<f32>, %w: tensor<1xf32>) {
  // expected-error @+1 {{'kiln.rms_norm' op expects an input with at least one dimension}}
  %0 = kiln.rms_norm %x, %w : tensor<f32>, tensor<1xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>, %w: tensor<1x8xf32>) {
  // expected-error @+1 {{'kiln.rms_norm' op expects a 1-D weight, got rank 2}}
  %0 = kiln.rms_norm %x, %w : tensor<2x8xf32>, tensor<1x8xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>, %w: tensor<6xf32>) {
  // expected-error @+1 {{'kiln.rms_norm' op weight has 6 elements but the innermost dimension has 8}}
  %0 = kiln.rms_norm %x, %w : tensor<2x8xf32>, tensor<6xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>, %w: tensor<8xf16>) {
  // expected-error @+1 {{'kiln.rms_norm' op weight element type 'f16' differs from input element type 'f32'}}
  %0 = kiln.rms_norm %x, %w : tensor<2x8xf32>, tensor<8xf16>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{'kiln.rms_norm' op epsilon must be non-negative, got -1.000000e+00}}
  %0 = kiln.rms_norm %x, %w {epsilon = -1.0 : f32} : tensor<2x8xf32>, tensor<8xf32>
  return
}

// -----

func.func @f(%x: tensor<7x64xf32>, %p: tensor<7xi32>) {
  // expected-error @+1 {{'kiln.rope' op expects input of rank >= 3 ([..., seq, heads, head_dim]), got rank 2}}
  %0 = kiln.rope %x, %p {theta = 10000.0} : tensor<7x64xf32>, tensor<7xi32>
  return
}

// -----

func.func @f(%x: tensor<7x4x63xf32>, %p: tensor<7xi32>) {
  // expected-error @+1 {{'kiln.rope' op head_dim 63 must be even to rotate pairs}}
  %0 = kiln.rope %x, %p {theta = 10000.0} : tensor<7x4x63xf32>, tensor<7xi32>
  return
}

// -----

func.func @f(%x: tensor<7x4x64xf32>, %p: tensor<7xi32>) {
  // expected-error @+1 {{'kiln.rope' op rotary_dim must be positive and even, got 31}}
  %0 = kiln.rope %x, %p {theta = 10000.0, rotary_dim = 31} : tensor<7x4x64xf32>, tensor<7xi32>
  return
}

// -----

func.func @f(%x: tensor<7x4x64xf32>, %p: tensor<7xi32>) {
  // expected-error @+1 {{'kiln.rope' op rotary_dim 128 exceeds head_dim 64}}
  %0 = kiln.rope %x, %p {theta = 10000.0, rotary_dim = 128} : tensor<7x4x64xf32>, tensor<7xi32>
  return
}

// -----

func.func @f(%x: tensor<7x4x64xf32>, %p: tensor<1x7xi32>) {
  // expected-error @+1 {{'kiln.rope' op expects 1-D positions, got rank 2}}
  %0 = kiln.rope %x, %p {theta = 10000.0} : tensor<7x4x64xf32>, tensor<1x7xi32>
  return
}

// -----

func.func @f(%x: tensor<7x4x64xf32>, %p: tensor<6xi32>) {
  // expected-error @+1 {{'kiln.rope' op has 6 positions for 7 tokens}}
  %0 = kiln.rope %x, %p {theta = 10000.0} : tensor<7x4x64xf32>, tensor<6xi32>
  return
}

// -----

func.func @f(%x: tensor<7x4x64xf32>, %p: tensor<7xf32>) {
  // expected-error @+1 {{'kiln.rope' op operand #1 must be ranked tensor of signless integer values}}
  %0 = kiln.rope %x, %p {theta = 10000.0} : tensor<7x4x64xf32>, tensor<7xf32>
  return
}

// -----

func.func @f(%x: tensor<7x4x64xf32>, %p: tensor<7xi32>) {
  // expected-error @+1 {{'kiln.rope' op theta must be positive, got 0.000000e+00}}
  %0 = kiln.rope %x, %p {theta = 0.0} : tensor<7x4x64xf32>, tensor<7xi32>
  return
}

// -----

func.func @f(%x: tensor<7x4x64xf32>, %p: tensor<7xi32>) {
  // expected-error @+1 {{'kiln.rope' op freq_scale must be positive, got -2.000000e+00}}
  %0 = kiln.rope %x, %p {theta = 10000.0, freq_scale = -2.0} : tensor<7x4x64xf32>, tensor<7xi32>
  return
}

// -----

func.func @f(%q: tensor<5x64xf32>, %k: tensor<9x64xf32>, %v: tensor<9x64xf32>) {
  // expected-error @+1 {{'kiln.attention' op expects query, key and value of one rank >= 3 ([..., seq, heads, head_dim]), got ranks 2, 2, 2}}
  %0 = kiln.attention %q, %k, %v : tensor<5x64xf32>, tensor<9x64xf32>, tensor<9x64xf32>
  return
}

// -----

func.func @f(%q: tensor<5x8x64xf32>, %k: tensor<9x2x64xf16>, %v: tensor<9x2x64xf16>) {
  // expected-error @+1 {{'kiln.attention' op expects query, key and value of one element type, got 'f32', 'f16', 'f16'}}
  %0 = kiln.attention %q, %k, %v : tensor<5x8x64xf32>, tensor<9x2x64xf16>, tensor<9x2x64xf16>
  return
}

// -----

func.func @f(%q: tensor<2x5x8x64xf32>, %k: tensor<3x9x2x64xf32>, %v: tensor<3x9x2x64xf32>) {
  // expected-error @+1 {{'kiln.attention' op batch dimensions differ: query [2, 5, 8, 64], key [3, 9, 2, 64], value [3, 9, 2, 64]}}
  %0 = kiln.attention %q, %k, %v : tensor<2x5x8x64xf32>, tensor<3x9x2x64xf32>, tensor<3x9x2x64xf32>
  return
}

// -----

func.func @f(%q: tensor<5x8x64xf32>, %k: tensor<9x2x64xf32>, %v: tensor<10x2x64xf32>) {
  // expected-error @+1 {{'kiln.attention' op key has 9 positions but value has 10}}
  %0 = kiln.attention %q, %k, %v : tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<10x2x64xf32>
  return
}

// -----

func.func @f(%q: tensor<5x8x64xf32>, %k: tensor<9x2x64xf32>, %v: tensor<9x4x64xf32>) {
  // expected-error @+1 {{'kiln.attention' op key has 2 heads but value has 4}}
  %0 = kiln.attention %q, %k, %v : tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<9x4x64xf32>
  return
}

// -----

func.func @f(%q: tensor<5x8x64xf32>, %k: tensor<9x2x32xf32>, %v: tensor<9x2x64xf32>) {
  // expected-error @+1 {{'kiln.attention' op query head_dim 64 differs from key head_dim 32}}
  %0 = kiln.attention %q, %k, %v : tensor<5x8x64xf32>, tensor<9x2x32xf32>, tensor<9x2x64xf32>
  return
}

// -----

func.func @f(%q: tensor<5x6x64xf32>, %k: tensor<9x4x64xf32>, %v: tensor<9x4x64xf32>) {
  // expected-error @+1 {{'kiln.attention' op query heads (6) must be a multiple of key/value heads (4)}}
  %0 = kiln.attention %q, %k, %v : tensor<5x6x64xf32>, tensor<9x4x64xf32>, tensor<9x4x64xf32>
  return
}

// -----

func.func @f(%q: tensor<5x8x64xf32>, %k: tensor<9x2x64xf32>, %v: tensor<9x2x64xf32>, %m: tensor<9x5xf32>) {
  // expected-error @+1 {{'kiln.attention' op expects a mask of shape [5, 9] and type 'f32', got 'tensor<9x5xf32>'}}
  %0 = kiln.attention %q, %k, %v mask(%m : tensor<9x5xf32>) : tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<9x2x64xf32>
  return
}

// -----

func.func @f(%q: tensor<5x8x64xf32>, %k: tensor<9x2x64xf32>, %v: tensor<9x2x64xf32>, %m: tensor<2x5x9xf32>) {
  // An unbatched query has no batch dimensions a per-entry mask could follow.
  // expected-error @+1 {{'kiln.attention' op expects a mask of shape [5, 9] and type 'f32', got 'tensor<2x5x9xf32>'}}
  %0 = kiln.attention %q, %k, %v mask(%m : tensor<2x5x9xf32>) : tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<9x2x64xf32>
  return
}

// -----

func.func @f(%q: tensor<3x5x8x64xf32>, %k: tensor<3x9x2x64xf32>, %v: tensor<3x9x2x64xf32>, %m: tensor<2x5x9xf32>) {
  // expected-error @+1 {{'kiln.attention' op expects a mask of shape [5, 9] or [3, 5, 9] and type 'f32', got 'tensor<2x5x9xf32>'}}
  %0 = kiln.attention %q, %k, %v mask(%m : tensor<2x5x9xf32>) : tensor<3x5x8x64xf32>, tensor<3x9x2x64xf32>, tensor<3x9x2x64xf32>
  return
}

// -----

func.func @f(%q: tensor<3x5x8x64xf32>, %k: tensor<3x9x2x64xf32>, %v: tensor<3x9x2x64xf32>, %m: tensor<3x1x9xf32>) {
  // A [B, 1, T] mask is not broadcast over the queries.
  // expected-error @+1 {{'kiln.attention' op expects a mask of shape [5, 9] or [3, 5, 9] and type 'f32', got 'tensor<3x1x9xf32>'}}
  %0 = kiln.attention %q, %k, %v mask(%m : tensor<3x1x9xf32>) : tensor<3x5x8x64xf32>, tensor<3x9x2x64xf32>, tensor<3x9x2x64xf32>
  return
}

// -----

func.func @f(%q: tensor<2x3x5x8x64xf32>, %k: tensor<2x3x9x2x64xf32>, %v: tensor<2x3x9x2x64xf32>, %m: tensor<3x5x9xf32>) {
  // A per-entry mask carries every batch dimension of the query.
  // expected-error @+1 {{'kiln.attention' op expects a mask of shape [5, 9] or [2, 3, 5, 9] and type 'f32', got 'tensor<3x5x9xf32>'}}
  %0 = kiln.attention %q, %k, %v mask(%m : tensor<3x5x9xf32>) : tensor<2x3x5x8x64xf32>, tensor<2x3x9x2x64xf32>, tensor<2x3x9x2x64xf32>
  return
}

// -----

func.func @f(%q: tensor<3x5x8x64xf32>, %k: tensor<3x9x2x64xf32>, %v: tensor<3x9x2x64xf32>, %m: tensor<3x5x9xf16>) {
  // expected-error @+1 {{'kiln.attention' op expects a mask of shape [5, 9] or [3, 5, 9] and type 'f32', got 'tensor<3x5x9xf16>'}}
  %0 = kiln.attention %q, %k, %v mask(%m : tensor<3x5x9xf16>) : tensor<3x5x8x64xf32>, tensor<3x9x2x64xf32>, tensor<3x9x2x64xf32>
  return
}

// -----

func.func @f(%q: tensor<5x8x64xf32>, %k: tensor<9x2x64xf32>, %v: tensor<9x2x64xf32>) {
  // Attributes in the attribute dictionary are checked when the op is verified, where
  // MLIR follows a failed inference with a second error.
  // expected-error @+2 {{'kiln.attention' op scale must be positive, got -1.000000e+00}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = kiln.attention %q, %k, %v {scale = -1.0} : tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<9x2x64xf32>
  return
}

// -----

func.func @f(%q: tensor<5x8x64xf32>, %k: tensor<9x2x64xf32>, %v: tensor<9x2x64xf32>, %p: tensor<2xi64>) {
  // expected-error @+1 {{'kiln.attention' op expects a query offset of one element (tensor<1xi64>), got 'tensor<2xi64>'}}
  %0 = kiln.attention %q, %k, %v offset(%p : tensor<2xi64>) : tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<9x2x64xf32>
  return
}

// -----

func.func @f(%q: tensor<5x8x64xf32>, %k: tensor<9x2x64xf32>, %v: tensor<9x2x64xf32>, %p: tensor<1xi64>) {
  // expected-error @+2 {{'kiln.attention' op takes either causal or a query offset, not both}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = kiln.attention %q, %k, %v offset(%p : tensor<1xi64>) {causal} : tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<9x2x64xf32>
  return
}

// -----

func.func @f(%q: tensor<5x8x64xf32>, %k: tensor<9x2x64xf32>, %v: tensor<9x2x64xf32>) {
  // expected-error @+2 {{'kiln.attention' op window 4 needs a query offset and must be positive}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = kiln.attention %q, %k, %v {window = 4} : tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<9x2x64xf32>
  return
}

// -----

func.func @f(%q: tensor<5x8x64xf32>, %k: tensor<9x2x64xf32>, %v: tensor<9x2x64xf32>, %p: tensor<1xi64>) {
  // expected-error @+2 {{'kiln.attention' op window 0 needs a query offset and must be positive}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = kiln.attention %q, %k, %v offset(%p : tensor<1xi64>) {window = 0} : tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<9x2x64xf32>
  return
}

// -----

func.func @f(%q: tensor<5x8x64xf32>, %k: tensor<9x2x64xf32>, %v: tensor<9x2x64xf32>, %p: tensor<1xi64>) {
  // expected-error @+2 {{'kiln.attention' op ring_positions needs a window and no mask}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = kiln.attention %q, %k, %v offset(%p : tensor<1xi64>) {ring_positions = 100} : tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<9x2x64xf32>
  return
}

// -----

// Window 6 + 5 queries - 1 = 10 rows would be needed: the pass's own rows would
// overwrite keys its first queries still see.
func.func @f(%q: tensor<5x8x64xf32>, %k: tensor<9x2x64xf32>, %v: tensor<9x2x64xf32>, %p: tensor<1xi64>) {
  // expected-error @+2 {{'kiln.attention' op ring_positions 100 over 9 rows: needs window + queries - 1 (10) <= rows <= ring_positions}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = kiln.attention %q, %k, %v offset(%p : tensor<1xi64>) {window = 6, ring_positions = 100} : tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<9x2x64xf32>
  return
}

// -----

func.func @f(%q: tensor<5x8x64xf32>, %k: tensor<9x2x64xf32>, %v: tensor<9x2x64xf32>, %p: tensor<1xi64>) {
  // expected-error @+2 {{'kiln.attention' op ring_positions 8 over 9 rows: needs window + queries - 1 (8) <= rows <= ring_positions}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = kiln.attention %q, %k, %v offset(%p : tensor<1xi64>) {window = 4, ring_positions = 8} : tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<9x2x64xf32>
  return
}

// -----

func.func @f(%q: tensor<5x8x64xf32>, %k: tensor<9x2x64xf32>, %v: tensor<9x2x64xf32>) {
  // expected-error @+2 {{'kiln.attention' op inferred type(s) 'tensor<5x8x64xf32>' are incompatible with return type(s) of operation 'tensor<5x64xf32>'}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = "kiln.attention"(%q, %k, %v) {operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>} : (tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<9x2x64xf32>) -> tensor<5x64xf32>
  return
}

// -----

func.func @f(%t: tensor<100x16xf32>, %i: tensor<4xi32>) {
  // expected-error @+1 {{'kiln.gather' op axis 2 is out of range for a rank-2 table}}
  %0 = kiln.gather %t[%i] axis = 2 : tensor<100x16xf32>, tensor<4xi32>
  return
}

// -----

func.func @f(%t: tensor<100x32x!kiln.quant<q8_0>>, %i: tensor<4xi32>) {
  // expected-error @+1 {{'kiln.gather' op a quantized table is packed along its innermost dimension; it can only be gathered along axis 0, got axis 1}}
  %0 = kiln.gather %t[%i] axis = 1 : tensor<100x32x!kiln.quant<q8_0>>, tensor<4xi32>
  return
}

// -----

func.func @f(%t: tensor<100x16xf32>, %i: tensor<4xi32>) {
  // expected-error @+2 {{'kiln.gather' op inferred type(s) 'tensor<4x16xf32>' are incompatible with return type(s) of operation 'tensor<16x4xf32>'}}
  // expected-error @+1 {{'kiln.gather' op failed to infer returned types}}
  %0 = "kiln.gather"(%t, %i) : (tensor<100x16xf32>, tensor<4xi32>) -> tensor<16x4xf32>
  return
}

// -----

func.func @f(%a: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.dispatch' op body has 0 arguments but the dispatch has 1 inputs}}
  %0 = kiln.dispatch ins(%a : tensor<4xf32>) -> tensor<4xf32> {
    %c = "test.make"() : () -> tensor<4xf32>
    kiln.yield %c : tensor<4xf32>
  }
  return
}

// -----

func.func @f(%a: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.dispatch' op body argument #0 has type 'tensor<8xf32>' but input #0 has type 'tensor<4xf32>'}}
  %0 = kiln.dispatch ins(%a : tensor<4xf32>) -> tensor<8xf32> {
  ^bb0(%x: tensor<8xf32>):
    kiln.yield %x : tensor<8xf32>
  }
  return
}

// -----

func.func @f(%a: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.dispatch' op body must end in kiln.yield}}
  kiln.dispatch ins(%a : tensor<4xf32>) {
  ^bb0(%x: tensor<4xf32>):
    "test.terminator"() : () -> ()
  }
  return
}

// -----

func.func @f(%a: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.dispatch' op body yields 1 values but the dispatch has 2 results}}
  %0:2 = kiln.dispatch ins(%a : tensor<4xf32>) -> tensor<4xf32>, tensor<4xf32> {
  ^bb0(%x: tensor<4xf32>):
    kiln.yield %x : tensor<4xf32>
  }
  return
}

// -----

func.func @f(%a: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.dispatch' op yielded value #0 has type 'tensor<4xf32>' but result #0 has type 'tensor<4xf16>'}}
  %0 = kiln.dispatch ins(%a : tensor<4xf32>) -> tensor<4xf16> {
  ^bb0(%x: tensor<4xf32>):
    kiln.yield %x : tensor<4xf32>
  }
  return
}

// -----

func.func @f(%a: tensor<4xf32>) {
  // The region is isolated: values from outside must come in as inputs.
  // expected-note @+1 {{required by region isolation constraints}}
  %0 = kiln.dispatch -> tensor<4xf32> {
    // expected-error @+1 {{using value defined outside the region}}
    kiln.yield %a : tensor<4xf32>
  }
  return
}

// -----

func.func @f(%a: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.yield' op expects parent op 'kiln.dispatch'}}
  "kiln.yield"(%a) : (tensor<4xf32>) -> ()
}

// -----

func.func @f(%cache: tensor<12x2x8xf32>, %rows: tensor<4x2x4xf32>, %p: tensor<1xi64>) {
  // expected-error @+1 {{'kiln.cache_write' op rows [4, 2, 4] do not match cache rows [12, 2, 8] past the first dimension}}
  %0 = kiln.cache_write %rows into %cache at %p : tensor<4x2x4xf32> into tensor<12x2x8xf32>, tensor<1xi64>
  return
}

// -----

func.func @f(%cache: tensor<3x2x8xf32>, %rows: tensor<4x2x8xf32>, %p: tensor<1xi64>) {
  // expected-error @+1 {{'kiln.cache_write' op writes 4 rows into a cache of 3}}
  %0 = kiln.cache_write %rows into %cache at %p : tensor<4x2x8xf32> into tensor<3x2x8xf32>, tensor<1xi64>
  return
}

// -----

func.func @f(%cache: tensor<12x2x8xf32>, %rows: tensor<4x2x8xf16>, %p: tensor<1xi64>) {
  // expected-error @+1 {{'kiln.cache_write' op rows of 'f16' into a cache of 'f32'}}
  %0 = kiln.cache_write %rows into %cache at %p : tensor<4x2x8xf16> into tensor<12x2x8xf32>, tensor<1xi64>
  return
}

// -----

func.func @f(%cache: tensor<12x2x8xf32>, %rows: tensor<16xf32>, %p: tensor<1xi64>) {
  // expected-error @+1 {{'kiln.cache_write' op expects rows of the cache's rank (3), got 'tensor<16xf32>'}}
  %0 = kiln.cache_write %rows into %cache at %p : tensor<16xf32> into tensor<12x2x8xf32>, tensor<1xi64>
  return
}

// -----

func.func @f(%cache: tensor<12x2x8xf32>, %rows: tensor<4x2x8xf32>, %p: tensor<2xi64>) {
  // expected-error @+1 {{'kiln.cache_write' op expects an offset of one element (tensor<1xi64>), got 'tensor<2xi64>'}}
  %0 = kiln.cache_write %rows into %cache at %p : tensor<4x2x8xf32> into tensor<12x2x8xf32>, tensor<2xi64>
  return
}

// -----

// expected-error @+1 {{'kiln.weight' op q4_0x16 interleaves 16 rows: the second-innermost dimension must be a multiple of 16, got 'tensor<24x32x!kiln.quant<q4_0x16>>'}}
%0 = kiln.weight "w" from "m.gguf"[0] : tensor<24x32x!kiln.quant<q4_0x16>>

// -----

// expected-error @+1 {{'kiln.weight' op q4_0x16 interleaves 16 rows: the second-innermost dimension must be a multiple of 16, got 'tensor<32x!kiln.quant<q4_0x16>>'}}
%0 = kiln.weight "w" from "m.gguf"[0] : tensor<32x!kiln.quant<q4_0x16>>

// -----

// expected-error @+1 {{'kiln.weight' op can convert only q4_0, q8_0, q5_0, q4_k and q6_k bytes into their interleaved layouts (q4_0x16, q8_0x16, q5_0x16, q4_kx16, q6_kx16), or f32/f16/bf16 bytes into q8_0, q4_0, q4_1, q8_0x16 or q4_0x16, got source_scheme 'q8_0' for 'tensor<16x32x!kiln.quant<q4_0x16>>'}}
%0 = kiln.weight "w" from "m.gguf"[0] {source_scheme = "q8_0"} : tensor<16x32x!kiln.quant<q4_0x16>>

// -----

// expected-error @+1 {{'kiln.weight' op can convert only q4_0, q8_0, q5_0, q4_k and q6_k bytes into their interleaved layouts (q4_0x16, q8_0x16, q5_0x16, q4_kx16, q6_kx16), or f32/f16/bf16 bytes into q8_0, q4_0, q4_1, q8_0x16 or q4_0x16, got source_scheme 'q4_0' for 'tensor<16x32x!kiln.quant<q4_0>>'}}
%0 = kiln.weight "w" from "m.gguf"[0] {source_scheme = "q4_0"} : tensor<16x32x!kiln.quant<q4_0>>

// -----

// expected-error @+1 {{'kiln.weight' op can convert only q4_0, q8_0, q5_0, q4_k and q6_k bytes into their interleaved layouts (q4_0x16, q8_0x16, q5_0x16, q4_kx16, q6_kx16), or f32/f16/bf16 bytes into q8_0, q4_0, q4_1, q8_0x16 or q4_0x16, got source_scheme 'f32' for 'tensor<16x256x!kiln.quant<q6_k>>'}}
%0 = kiln.weight "w" from "m.safetensors"[0] {source_scheme = "f32"} : tensor<16x256x!kiln.quant<q6_k>>

// -----

// expected-error @+1 {{'kiln.weight' op cannot permute packed (!kiln.quant) elements (only a float source_scheme's elements, before they are packed)}}
%0 = kiln.weight "w" from "m.gguf"[0] {permutation = array<i64: 1, 0>} : tensor<16x32x!kiln.quant<q8_0>>

// -----

func.func @f(%x: tensor<8x64xf32>, %window: tensor<3x64xf32>, %w: tensor<64x4x1xf32>) {
  // expected-error @+1 {{'kiln.causal_conv1d' op expects input [L, C], window [K - 1, C] and weight [C, K], got ranks 2, 2, 3}}
  %y, %w2 = kiln.causal_conv1d %x, %window, %w : tensor<8x64xf32>, tensor<3x64xf32>, tensor<64x4x1xf32>
  return
}

// -----

func.func @f(%x: tensor<8x64xf32>, %window: tensor<3x64xf32>, %w: tensor<32x4xf32>) {
  // expected-error @+1 {{'kiln.causal_conv1d' op channels differ: input [8, 64], window [3, 64], weight [32, 4]}}
  %y, %w2 = kiln.causal_conv1d %x, %window, %w : tensor<8x64xf32>, tensor<3x64xf32>, tensor<32x4xf32>
  return
}

// -----

func.func @f(%x: tensor<8x64xf32>, %window: tensor<2x64xf32>, %w: tensor<64x4xf32>) {
  // expected-error @+1 {{'kiln.causal_conv1d' op a filter of 4 taps needs a window of 3 rows, got 2}}
  %y, %w2 = kiln.causal_conv1d %x, %window, %w : tensor<8x64xf32>, tensor<2x64xf32>, tensor<64x4xf32>
  return
}

// -----

func.func @f(%x: tensor<8x64xf32>, %window: tensor<0x64xf32>, %w: tensor<64x1xf32>) {
  // expected-error @+1 {{'kiln.causal_conv1d' op expects a filter of at least 2 taps, got 1}}
  %y, %w2 = kiln.causal_conv1d %x, %window, %w : tensor<8x64xf32>, tensor<0x64xf32>, tensor<64x1xf32>
  return
}

// -----

func.func @f(%x: tensor<8x64xf32>, %window: tensor<3x64xf16>, %w: tensor<64x4xf32>) {
  // expected-error @+1 {{'kiln.causal_conv1d' op expects input, window and weight of one element type, got 'f32', 'f16', 'f32'}}
  %y, %w2 = kiln.causal_conv1d %x, %window, %w : tensor<8x64xf32>, tensor<3x64xf16>, tensor<64x4xf32>
  return
}

// -----

func.func @f(%x: tensor<8x64xf32>, %window: tensor<3x64xf32>, %w: tensor<64x4xf32>, %n: tensor<2xi64>) {
  // expected-error @+1 {{'kiln.causal_conv1d' op expects a length of one element (tensor<1xi64>), got 'tensor<2xi64>'}}
  %y, %w2 = kiln.causal_conv1d %x, %window, %w length(%n : tensor<2xi64>) : tensor<8x64xf32>, tensor<3x64xf32>, tensor<64x4xf32>
  return
}

// -----

func.func @f(%x: tensor<8x64xf32>, %dt: tensor<8x32xf32>, %a: tensor<64x16xf32>, %b: tensor<8x16xf32>, %c: tensor<8x16xf32>, %h: tensor<64x16xf32>) {
  // expected-error @+1 {{'kiln.selective_scan' op delta [8, 32] differs from input [8, 64]}}
  %y, %h2 = kiln.selective_scan %x, %dt, %a, %b, %c, %h : tensor<8x64xf32>, tensor<8x32xf32>, tensor<64x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<64x16xf32>
  return
}

// -----

func.func @f(%x: tensor<8x64xf32>, %dt: tensor<8x64xf32>, %a: tensor<64x16xf32>, %b: tensor<8x16xf32>, %c: tensor<8x16xf32>, %h: tensor<64x8xf32>) {
  // expected-error @+1 {{'kiln.selective_scan' op expects a and state of shape [D, N] = [64, N], got a [64, 16] and state [64, 8]}}
  %y, %h2 = kiln.selective_scan %x, %dt, %a, %b, %c, %h : tensor<8x64xf32>, tensor<8x64xf32>, tensor<64x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<64x8xf32>
  return
}

// -----

func.func @f(%x: tensor<8x64xf32>, %dt: tensor<8x64xf32>, %a: tensor<64x16xf32>, %b: tensor<8x16xf32>, %c: tensor<4x16xf32>, %h: tensor<64x16xf32>) {
  // expected-error @+1 {{'kiln.selective_scan' op expects b and c of shape [L, N] = [8, 16], got b [8, 16] and c [4, 16]}}
  %y, %h2 = kiln.selective_scan %x, %dt, %a, %b, %c, %h : tensor<8x64xf32>, tensor<8x64xf32>, tensor<64x16xf32>, tensor<8x16xf32>, tensor<4x16xf32>, tensor<64x16xf32>
  return
}

// -----

func.func @f(%x: tensor<8x64xf32>, %dt: tensor<8x64xf32>, %a: tensor<64x16xf32>, %b: tensor<8x16xf32>, %c: tensor<8x16xf32>, %h: tensor<64x16xf16>) {
  // expected-error @+1 {{'kiln.selective_scan' op expects all operands of one element type, got 'f32', 'f32', 'f32', 'f32', 'f32', 'f16'}}
  %y, %h2 = kiln.selective_scan %x, %dt, %a, %b, %c, %h : tensor<8x64xf32>, tensor<8x64xf32>, tensor<64x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<64x16xf16>
  return
}

// -----

func.func @f(%x: tensor<8x64x1xf32>, %dt: tensor<8x64xf32>, %a: tensor<64x16xf32>, %b: tensor<8x16xf32>, %c: tensor<8x16xf32>, %h: tensor<64x16xf32>) {
  // expected-error @+1 {{'kiln.selective_scan' op expects input and delta [L, D], a [D, N], b and c [L, N] and state [D, N], all of rank 2}}
  %y, %h2 = kiln.selective_scan %x, %dt, %a, %b, %c, %h : tensor<8x64x1xf32>, tensor<8x64xf32>, tensor<64x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<64x16xf32>
  return
}

// -----

func.func @f(%x: tensor<8x64xf32>, %dt: tensor<8x64xf32>, %a: tensor<64x16xf32>, %b: tensor<8x16xf32>, %c: tensor<8x16xf32>, %h: tensor<64x16xf32>, %n: tensor<1x1xi64>) {
  // expected-error @+1 {{'kiln.selective_scan' op expects a length of one element (tensor<1xi64>), got 'tensor<1x1xi64>'}}
  %y, %h2 = kiln.selective_scan %x, %dt, %a, %b, %c, %h length(%n : tensor<1x1xi64>) : tensor<8x64xf32>, tensor<8x64xf32>, tensor<64x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<64x16xf32>
  return
}

// -----

func.func @f(%r: tensor<8x4x16xf32>, %k: tensor<8x4x8xf32>, %u: tensor<4x16xf32>, %s: tensor<4x16x16xf32>) {
  // expected-error @+1 {{'kiln.wkv' op expects key, value and decay of the receptance's shape [8, 4, 16], got [8, 4, 8]}}
  %y, %s2 = kiln.wkv %r, %k, %r, %r, %u, %s : tensor<8x4x16xf32>, tensor<8x4x8xf32>, tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<4x16xf32>, tensor<4x16x16xf32>
  return
}

// -----

func.func @f(%r: tensor<8x4x16xf32>, %u: tensor<2x16xf32>, %s: tensor<4x16x16xf32>) {
  // expected-error @+1 {{'kiln.wkv' op expects a bonus of shape [4, 16], got [2, 16]}}
  %y, %s2 = kiln.wkv %r, %r, %r, %r, %u, %s : tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<2x16xf32>, tensor<4x16x16xf32>
  return
}

// -----

func.func @f(%r: tensor<8x4x16xf32>, %u: tensor<4x16xf32>, %s: tensor<4x16x8xf32>) {
  // expected-error @+1 {{'kiln.wkv' op expects a state of shape [4, 16, 16], got [4, 16, 8]}}
  %y, %s2 = kiln.wkv %r, %r, %r, %r, %u, %s : tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<4x16xf32>, tensor<4x16x8xf32>
  return
}

// -----

func.func @f(%r: tensor<8x64xf32>, %u: tensor<4x16xf32>, %s: tensor<4x16x16xf32>) {
  // expected-error @+1 {{'kiln.wkv' op expects receptance, key, value and decay [L, H, S], bonus [H, S] and state [H, S, S], got ranks 2, 2, 3}}
  %y, %s2 = kiln.wkv %r, %r, %r, %r, %u, %s : tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<4x16xf32>, tensor<4x16x16xf32>
  return
}

// -----

func.func @f(%r: tensor<8x4x16xf32>, %u: tensor<4x16xf16>, %s: tensor<4x16x16xf32>) {
  // expected-error @+1 {{'kiln.wkv' op expects all operands of one element type, got 'f32', 'f32', 'f32', 'f32', 'f16', 'f32'}}
  %y, %s2 = kiln.wkv %r, %r, %r, %r, %u, %s : tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<4x16xf16>, tensor<4x16x16xf32>
  return
}

// -----

func.func @f(%r: tensor<8x4x16xf32>, %u: tensor<4x16xf32>, %s: tensor<4x16x16xf32>, %n: tensor<3xi64>) {
  // expected-error @+1 {{'kiln.wkv' op expects a length of one element (tensor<1xi64>), got 'tensor<3xi64>'}}
  %y, %s2 = kiln.wkv %r, %r, %r, %r, %u, %s length(%n : tensor<3xi64>) : tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<4x16xf32>, tensor<4x16x16xf32>
  return
}

// -----

func.func @f(%r: tensor<8x4x16xf32>, %s: tensor<4x16x8xf32>) {
  // expected-error @+1 {{'kiln.wkv7' op expects a state of shape [4, 16, 16] and type 'f32', got 'tensor<4x16x8xf32>'}}
  %y, %s2 = kiln.wkv7 %r, %r, %r, %r, %r, %r, %s : tensor<8x4x16xf32>, tensor<4x16x8xf32>
  return
}

// -----

func.func @f(%r: tensor<8x64xf32>, %s: tensor<4x16x16xf32>) {
  // expected-error @+1 {{'kiln.wkv7' op expects receptance, decay, key, value, a and b [L, H, S] and state [H, S, S], got ranks 2 and 3}}
  %y, %s2 = kiln.wkv7 %r, %r, %r, %r, %r, %r, %s : tensor<8x64xf32>, tensor<4x16x16xf32>
  return
}

// -----

func.func @f(%r: tensor<8x4x16xf32>, %s: tensor<4x16x16xf32>, %n: tensor<2xi64>) {
  // expected-error @+1 {{'kiln.wkv7' op expects a length of one element (tensor<1xi64>), got 'tensor<2xi64>'}}
  %y, %s2 = kiln.wkv7 %r, %r, %r, %r, %r, %r, %s length(%n : tensor<2xi64>) : tensor<8x4x16xf32>, tensor<4x16x16xf32>
  return
}
