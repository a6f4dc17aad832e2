// kiln-quantize-weights rejects a scheme it does not know, naming the ones it does.
// RUN: kiln-opt %s --kiln-quantize-weights=scheme=int3 -verify-diagnostics

// expected-error @+1 {{kiln-quantize-weights: unknown scheme 'int3' (expected int8, int4 or int4-zp)}}
func.func @unknown_scheme(%x: tensor<2x32xf32>) -> tensor<2x32xf32> {
  return %x : tensor<2x32xf32>
}
