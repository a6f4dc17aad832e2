// Every kiln op parses, prints and parses again, in both the custom and generic forms.
// RUN: kiln-opt %s --allow-unregistered-dialect | kiln-opt --allow-unregistered-dialect | FileCheck %s
// RUN: kiln-opt %s --allow-unregistered-dialect --mlir-print-op-generic | kiln-opt --allow-unregistered-dialect | FileCheck %s

// CHECK-LABEL: func.func @weights
func.func @weights() -> (tensor<64x64x!kiln.quant<q4_0>>, tensor<4x256x!kiln.quant<int4, group = 128>>, tensor<8xf16>) {
  // CHECK: kiln.weight "blk.0.attn_q.weight" from "model.gguf"[4096] : tensor<64x64x!kiln.quant<q4_0>>
  %q = kiln.weight "blk.0.attn_q.weight" from "model.gguf"[4096] : tensor<64x64x!kiln.quant<q4_0>>
  // CHECK: kiln.weight "w" from "w.bin"[0] : tensor<4x256x!kiln.quant<int4, group = 128>>
  %g = kiln.weight "w" from "w.bin"[0] : tensor<4x256x!kiln.quant<int4, group = 128>>
  // CHECK: kiln.weight "bias" from "model.safetensors"[128] : tensor<8xf16>
  %b = kiln.weight "bias" from "model.safetensors"[128] : tensor<8xf16>
  return %q, %g, %b : tensor<64x64x!kiln.quant<q4_0>>, tensor<4x256x!kiln.quant<int4, group = 128>>, tensor<8xf16>
}

// AWQ's per-input-channel scales: on an f32 weight (a norm's) and on float bytes packed.
// CHECK-LABEL: func.func @scaled_weights
func.func @scaled_weights() -> (tensor<2xf32>, tensor<1x32x!kiln.quant<q4_0>>) {
  // CHECK: kiln.weight "norm" from "m.safetensors"[0] {input_scale = array<f32: 5.000000e-01, 2.000000e+00>} : tensor<2xf32>
  %n = kiln.weight "norm" from "m.safetensors"[0] {input_scale = array<f32: 0.5, 2.0>} : tensor<2xf32>
  // CHECK: kiln.weight "w" from "m.safetensors"[8] {input_scale = array<f32: 1.000000e+00, {{.*}}>, source_scheme = "bf16"} : tensor<1x32x!kiln.quant<q4_0>>
  %w = kiln.weight "w" from "m.safetensors"[8] {input_scale = array<f32: 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 4.0>, source_scheme = "bf16"} : tensor<1x32x!kiln.quant<q4_0>>
  return %n, %w : tensor<2xf32>, tensor<1x32x!kiln.quant<q4_0>>
}

// CHECK-LABEL: func.func @dequantize
func.func @dequantize(%q8: tensor<2x32x!kiln.quant<q8_0>>, %k4: tensor<2x256x!kiln.quant<q4_k>>,
                      %k6: tensor<?x512x!kiln.quant<q6_k>>, %i8: tensor<3x64x!kiln.quant<int8, group = 32>>,
                      %s: tensor<3x2xf32>, %z: tensor<3x2xi8>, %q5: tensor<2x64x!kiln.quant<q5_0>>,
                      %q51: tensor<2x64x!kiln.quant<q5_1>>) {
  // CHECK: kiln.dequantize %{{.*}} : tensor<2x32x!kiln.quant<q8_0>>
  %0 = kiln.dequantize %q8 : tensor<2x32x!kiln.quant<q8_0>>
  // CHECK: kiln.dequantize %{{.*}} : tensor<2x256x!kiln.quant<q4_k>>
  %1 = kiln.dequantize %k4 : tensor<2x256x!kiln.quant<q4_k>>
  // CHECK: kiln.dequantize %{{.*}} : tensor<?x512x!kiln.quant<q6_k>>
  %2 = kiln.dequantize %k6 : tensor<?x512x!kiln.quant<q6_k>>
  // CHECK: kiln.dequantize %{{.*}} : tensor<2x64x!kiln.quant<q5_0>>
  %4 = kiln.dequantize %q5 : tensor<2x64x!kiln.quant<q5_0>>
  // CHECK: kiln.dequantize %{{.*}} : tensor<2x64x!kiln.quant<q5_1>>
  %5 = kiln.dequantize %q51 : tensor<2x64x!kiln.quant<q5_1>>
  // CHECK: kiln.dequantize %{{.*}} scales(%{{.*}} : tensor<3x2xf32>) zero_points(%{{.*}} : tensor<3x2xi8>) : tensor<3x64x!kiln.quant<int8, group = 32>>
  %3 = kiln.dequantize %i8 scales(%s : tensor<3x2xf32>) zero_points(%z : tensor<3x2xi8>) : tensor<3x64x!kiln.quant<int8, group = 32>>
  // The result is f32 of the input's shape, dynamic dimensions included.
  // CHECK: "test.use"(%{{.*}}, %{{.*}}) : (tensor<?x512xf32>, tensor<3x64xf32>) -> ()
  "test.use"(%2, %3) : (tensor<?x512xf32>, tensor<3x64xf32>) -> ()
  return
}

// CHECK-LABEL: func.func @rms_norm
func.func @rms_norm(%x: tensor<4x?x64xf32>, %w: tensor<64xf32>) -> tensor<4x?x64xf32> {
  // CHECK: kiln.rms_norm %{{.*}}, %{{.*}} {epsilon = 9.99999974E-6 : f32} : tensor<4x?x64xf32>, tensor<64xf32>
  %0 = kiln.rms_norm %x, %w {epsilon = 1.0e-5 : f32} : tensor<4x?x64xf32>, tensor<64xf32>
  return %0 : tensor<4x?x64xf32>
}

// CHECK-LABEL: func.func @rope
func.func @rope(%x: tensor<1x7x4x64xf32>, %pos: tensor<7xi32>) -> (tensor<1x7x4x64xf32>, tensor<1x7x4x64xf32>) {
  // CHECK: kiln.rope %{{.*}}, %{{.*}} {theta = 1.000000e+04 : f64} : tensor<1x7x4x64xf32>, tensor<7xi32>
  %0 = kiln.rope %x, %pos {theta = 10000.0} : tensor<1x7x4x64xf32>, tensor<7xi32>
  // CHECK: kiln.rope %{{.*}}, %{{.*}} {freq_scale = 2.500000e-01 : f64, mode = #kiln.rope_mode<neox>, rotary_dim = 32 : i64, theta = 1.000000e+06 : f64}
  %1 = kiln.rope %x, %pos {theta = 1.0e6, freq_scale = 0.25, rotary_dim = 32, mode = #kiln.rope_mode<neox>} : tensor<1x7x4x64xf32>, tensor<7xi32>
  return %0, %1 : tensor<1x7x4x64xf32>, tensor<1x7x4x64xf32>
}

// CHECK-LABEL: func.func @attention
func.func @attention(%q: tensor<5x8x64xf32>, %k: tensor<9x2x64xf32>, %v: tensor<9x2x32xf32>,
                     %mask: tensor<5x9xf32>, %p: tensor<1xi64>)
    -> (tensor<5x8x32xf32>, tensor<5x8x32xf32>, tensor<5x8x32xf32>) {
  // Grouped-query attention: 8 query heads share 2 key/value heads.
  // CHECK: kiln.attention %{{.*}}, %{{.*}}, %{{.*}} {causal} : tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<9x2x32xf32>
  %0 = kiln.attention %q, %k, %v {causal} : tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<9x2x32xf32>
  // CHECK: kiln.attention %{{.*}}, %{{.*}}, %{{.*}} mask(%{{.*}} : tensor<5x9xf32>) {scale = 1.250000e-01 : f64}
  %1 = kiln.attention %q, %k, %v mask(%mask : tensor<5x9xf32>) {scale = 0.125} : tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<9x2x32xf32>
  // Over a KV cache: the queries start at position %p among the 9 key rows; sliding.
  // CHECK: kiln.attention %{{.*}}, %{{.*}}, %{{.*}} offset(%{{.*}} : tensor<1xi64>) {window = 4 : i64} : tensor<5x8x64xf32>
  %2 = kiln.attention %q, %k, %v offset(%p : tensor<1xi64>) {window = 4} : tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<9x2x32xf32>
  // The 9 rows as a ring over 100 positions: window 4 + 5 queries - 1 = 8 <= 9 rows.
  // CHECK: kiln.attention %{{.*}}, %{{.*}}, %{{.*}} offset(%{{.*}} : tensor<1xi64>) {ring_positions = 100 : i64, window = 4 : i64} : tensor<5x8x64xf32>
  %3 = kiln.attention %q, %k, %v offset(%p : tensor<1xi64>) {window = 4, ring_positions = 100} : tensor<5x8x64xf32>, tensor<9x2x64xf32>, tensor<9x2x32xf32>
  return %0, %1, %2 : tensor<5x8x32xf32>, tensor<5x8x32xf32>, tensor<5x8x32xf32>
}

// CHECK-LABEL: func.func @attention_per_sequence_mask
func.func @attention_per_sequence_mask(%q: tensor<3x5x8x64xf32>, %k: tensor<3x9x2x64xf32>, %v: tensor<3x9x2x32xf32>,
                                       %shared: tensor<5x9xf32>, %each: tensor<3x5x9xf32>) -> (tensor<3x5x8x32xf32>, tensor<3x5x8x32xf32>) {
  // A batched query takes one [S, T] mask for all entries or one per entry.
  // CHECK: kiln.attention %{{.*}}, %{{.*}}, %{{.*}} mask(%{{.*}} : tensor<5x9xf32>) : tensor<3x5x8x64xf32>
  %0 = kiln.attention %q, %k, %v mask(%shared : tensor<5x9xf32>) : tensor<3x5x8x64xf32>, tensor<3x9x2x64xf32>, tensor<3x9x2x32xf32>
  // CHECK: kiln.attention %{{.*}}, %{{.*}}, %{{.*}} mask(%{{.*}} : tensor<3x5x9xf32>) : tensor<3x5x8x64xf32>
  %1 = kiln.attention %q, %k, %v mask(%each : tensor<3x5x9xf32>) : tensor<3x5x8x64xf32>, tensor<3x9x2x64xf32>, tensor<3x9x2x32xf32>
  return %0, %1 : tensor<3x5x8x32xf32>, tensor<3x5x8x32xf32>
}

// CHECK-LABEL: func.func @gather
func.func @gather(%table: tensor<100x16xf16>, %ids: tensor<2x3xi64>, %packed: tensor<100x64x!kiln.quant<q8_0>>,
                  %t3: tensor<4x5x6xf32>, %i1: tensor<7xi32>) -> (tensor<2x3x16xf16>, tensor<2x3x64xf32>, tensor<4x7x6xf32>) {
  // CHECK: kiln.gather %{{.*}}[%{{.*}}] : tensor<100x16xf16>, tensor<2x3xi64>
  %0 = kiln.gather %table[%ids] : tensor<100x16xf16>, tensor<2x3xi64>
  // A packed table gives f32 rows.
  // CHECK: kiln.gather %{{.*}}[%{{.*}}] : tensor<100x64x!kiln.quant<q8_0>>, tensor<2x3xi64>
  %1 = kiln.gather %packed[%ids] : tensor<100x64x!kiln.quant<q8_0>>, tensor<2x3xi64>
  // CHECK: kiln.gather %{{.*}}[%{{.*}}] axis = 1 : tensor<4x5x6xf32>, tensor<7xi32>
  %2 = kiln.gather %t3[%i1] axis = 1 : tensor<4x5x6xf32>, tensor<7xi32>
  return %0, %1, %2 : tensor<2x3x16xf16>, tensor<2x3x64xf32>, tensor<4x7x6xf32>
}

// CHECK-LABEL: func.func @dispatch
func.func @dispatch(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: %[[R:.*]] = kiln.dispatch ins(%{{.*}}, %{{.*}} : tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> {
  // CHECK-NEXT: ^bb0(%[[X:.*]]: tensor<4xf32>, %[[Y:.*]]: tensor<4xf32>):
  // CHECK-NEXT:   %[[S:.*]] = arith.addf %[[X]], %[[Y]] : tensor<4xf32>
  // CHECK-NEXT:   kiln.yield %[[S]] : tensor<4xf32>
  // CHECK-NEXT: }
  %r = kiln.dispatch ins(%a, %b : tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%x: tensor<4xf32>, %y: tensor<4xf32>):
    %s = arith.addf %x, %y : tensor<4xf32>
    kiln.yield %s : tensor<4xf32>
  }
  // A dispatch without inputs or results, with attributes.
  // CHECK: kiln.dispatch attributes {kernel = "side_effect"} {
  kiln.dispatch attributes {kernel = "side_effect"} {
    "test.side_effect"() : () -> ()
    kiln.yield
  }
  return %r : tensor<4xf32>
}

// CHECK-LABEL: func.func @cache_write
func.func @cache_write(%cache: tensor<12x2x8xf32>, %rows: tensor<4x2x8xf32>, %p: tensor<1xi64>) -> tensor<12x2x8xf32> {
  // CHECK: kiln.cache_write %{{.*}} into %{{.*}} at %{{.*}} : tensor<4x2x8xf32> into tensor<12x2x8xf32>, tensor<1xi64>
  %0 = kiln.cache_write %rows into %cache at %p : tensor<4x2x8xf32> into tensor<12x2x8xf32>, tensor<1xi64>
  // CHECK: kiln.cache_write %{{.*}} into %{{.*}} at %{{.*}} {ring} : tensor<4x2x8xf32> into tensor<12x2x8xf32>, tensor<1xi64>
  %ring = kiln.cache_write %rows into %cache at %p {ring} : tensor<4x2x8xf32> into tensor<12x2x8xf32>, tensor<1xi64>
  return %0 : tensor<12x2x8xf32>
}

// CHECK-LABEL: func.func @recurrent
func.func @recurrent(%x: tensor<8x64xf32>, %window: tensor<3x64xf32>, %w: tensor<64x4xf32>,
                     %n: tensor<1xi64>, %dt: tensor<8x64xf32>, %a: tensor<64x16xf32>,
                     %b: tensor<8x16xf32>, %c: tensor<8x16xf32>, %h: tensor<64x16xf32>) {
  // CHECK: kiln.causal_conv1d %{{.*}}, %{{.*}}, %{{.*}} length(%{{.*}} : tensor<1xi64>) : tensor<8x64xf32>, tensor<3x64xf32>, tensor<64x4xf32>
  %y, %w2 = kiln.causal_conv1d %x, %window, %w length(%n : tensor<1xi64>) : tensor<8x64xf32>, tensor<3x64xf32>, tensor<64x4xf32>
  // CHECK: kiln.causal_conv1d %{{.*}}, %{{.*}}, %{{.*}} : tensor<8x64xf32>, tensor<3x64xf32>, tensor<64x4xf32>
  %y1, %w3 = kiln.causal_conv1d %x, %window, %w : tensor<8x64xf32>, tensor<3x64xf32>, tensor<64x4xf32>
  // CHECK: kiln.selective_scan %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} length(%{{.*}} : tensor<1xi64>) : tensor<8x64xf32>, tensor<8x64xf32>, tensor<64x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<64x16xf32>
  %s, %h2 = kiln.selective_scan %y, %dt, %a, %b, %c, %h length(%n : tensor<1xi64>) : tensor<8x64xf32>, tensor<8x64xf32>, tensor<64x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<64x16xf32>
  // CHECK: kiln.selective_scan %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<8x64xf32>, tensor<8x64xf32>, tensor<64x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<64x16xf32>
  %s1, %h3 = kiln.selective_scan %y, %dt, %a, %b, %c, %h : tensor<8x64xf32>, tensor<8x64xf32>, tensor<64x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<64x16xf32>
  "test.use"(%y, %w2, %y1, %w3, %s, %h2, %s1, %h3) : (tensor<8x64xf32>, tensor<3x64xf32>, tensor<8x64xf32>, tensor<3x64xf32>, tensor<8x64xf32>, tensor<64x16xf32>, tensor<8x64xf32>, tensor<64x16xf32>) -> ()
  return
}

// CHECK-LABEL: func.func @wkv
func.func @wkv(%r: tensor<8x4x16xf32>, %u: tensor<4x16xf32>, %s: tensor<4x16x16xf32>, %n: tensor<1xi64>) -> (tensor<8x4x16xf32>, tensor<4x16x16xf32>) {
  // CHECK: kiln.wkv %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} length(%{{.*}} : tensor<1xi64>) : tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<4x16xf32>, tensor<4x16x16xf32>
  %y, %s2 = kiln.wkv %r, %r, %r, %r, %u, %s length(%n : tensor<1xi64>) : tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<4x16xf32>, tensor<4x16x16xf32>
  return %y, %s2 : tensor<8x4x16xf32>, tensor<4x16x16xf32>
}

// CHECK-LABEL: func.func @wkv7
func.func @wkv7(%r: tensor<8x4x16xf32>, %s: tensor<4x16x16xf32>, %n: tensor<1xi64>) -> (tensor<8x4x16xf32>, tensor<4x16x16xf32>) {
  // CHECK: kiln.wkv7 %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} length(%{{.*}} : tensor<1xi64>) : tensor<8x4x16xf32>, tensor<4x16x16xf32>
  %y, %s2 = kiln.wkv7 %r, %r, %r, %r, %r, %r, %s length(%n : tensor<1xi64>) : tensor<8x4x16xf32>, tensor<4x16x16xf32>
  return %y, %s2 : tensor<8x4x16xf32>, tensor<4x16x16xf32>
}
