// A tiny llama-style decoder block in kiln IR: the bundled default model that the
// README's first command compiles. 8 tokens, model width 64, 4 query heads sharing
// 2 key/value heads of size 16; packed Q8_0 embeddings and Q4_0 projections, as a
// GGUF file would give them. (The weights file is never read at this stage.)
#q = affine_map<(m, n, k) -> (m, k)>
#w = affine_map<(m, n, k) -> (n, k)>
#o = affine_map<(m, n, k) -> (m, n)>
func.func @forward(%tokens: tensor<8xi32>, %positions: tensor<8xi64>) -> tensor<8x64xf32> {
  %embd = kiln.weight "token_embd.weight" from "tiny-decoder.gguf"[0] : tensor<256x64x!kiln.quant<q8_0>>
  %norm = kiln.weight "blk.0.attn_norm.weight" from "tiny-decoder.gguf"[17408] : tensor<64xf32>
  %wq = kiln.weight "blk.0.attn_q.weight" from "tiny-decoder.gguf"[17664] : tensor<64x64x!kiln.quant<q4_0>>
  %wk = kiln.weight "blk.0.attn_k.weight" from "tiny-decoder.gguf"[19968] : tensor<32x64x!kiln.quant<q4_0>>
  %wv = kiln.weight "blk.0.attn_v.weight" from "tiny-decoder.gguf"[21120] : tensor<32x64x!kiln.quant<q4_0>>
  %wo = kiln.weight "blk.0.attn_output.weight" from "tiny-decoder.gguf"[22272] : tensor<64x64x!kiln.quant<q4_0>>

  %x = kiln.gather %embd[%tokens] : tensor<256x64x!kiln.quant<q8_0>>, tensor<8xi32>
  %h = kiln.rms_norm %x, %norm {epsilon = 1.0e-5 : f32} : tensor<8x64xf32>, tensor<64xf32>

  %zero = arith.constant 0.0 : f32
  %e64 = tensor.empty() : tensor<8x64xf32>
  %acc64 = linalg.fill ins(%zero : f32) outs(%e64 : tensor<8x64xf32>) -> tensor<8x64xf32>
  %e32 = tensor.empty() : tensor<8x32xf32>
  %acc32 = linalg.fill ins(%zero : f32) outs(%e32 : tensor<8x32xf32>) -> tensor<8x32xf32>

  %wqf = kiln.dequantize %wq : tensor<64x64x!kiln.quant<q4_0>>
  %wkf = kiln.dequantize %wk : tensor<32x64x!kiln.quant<q4_0>>
  %wvf = kiln.dequantize %wv : tensor<32x64x!kiln.quant<q4_0>>
  %q = linalg.matmul indexing_maps = [#q, #w, #o] ins(%h, %wqf : tensor<8x64xf32>, tensor<64x64xf32>) outs(%acc64 : tensor<8x64xf32>) -> tensor<8x64xf32>
  %k = linalg.matmul indexing_maps = [#q, #w, #o] ins(%h, %wkf : tensor<8x64xf32>, tensor<32x64xf32>) outs(%acc32 : tensor<8x32xf32>) -> tensor<8x32xf32>
  %v = linalg.matmul indexing_maps = [#q, #w, #o] ins(%h, %wvf : tensor<8x64xf32>, tensor<32x64xf32>) outs(%acc32 : tensor<8x32xf32>) -> tensor<8x32xf32>

  %qh = tensor.expand_shape %q [[0], [1, 2]] output_shape [8, 4, 16] : tensor<8x64xf32> into tensor<8x4x16xf32>
  %kh = tensor.expand_shape %k [[0], [1, 2]] output_shape [8, 2, 16] : tensor<8x32xf32> into tensor<8x2x16xf32>
  %vh = tensor.expand_shape %v [[0], [1, 2]] output_shape [8, 2, 16] : tensor<8x32xf32> into tensor<8x2x16xf32>
  %qr = kiln.rope %qh, %positions {theta = 10000.0} : tensor<8x4x16xf32>, tensor<8xi64>
  %kr = kiln.rope %kh, %positions {theta = 10000.0} : tensor<8x2x16xf32>, tensor<8xi64>
  %att = kiln.attention %qr, %kr, %vh {causal} : tensor<8x4x16xf32>, tensor<8x2x16xf32>, tensor<8x2x16xf32>
  %attf = tensor.collapse_shape %att [[0], [1, 2]] : tensor<8x4x16xf32> into tensor<8x64xf32>

  %wof = kiln.dequantize %wo : tensor<64x64x!kiln.quant<q4_0>>
  %out = linalg.matmul indexing_maps = [#q, #w, #o] ins(%attf, %wof : tensor<8x64xf32>, tensor<64x64xf32>) outs(%acc64 : tensor<8x64xf32>) -> tensor<8x64xf32>
  %res = arith.addf %x, %out : tensor<8x64xf32>
  return %res : tensor<8x64xf32>
}
