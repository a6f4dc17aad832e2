// Operations of the kiln dialect.
#ifndef KILN_OPS_TD
#define KILN_OPS_TD

include "KilnDialect.td"
include "KilnTypes.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"

def Kiln_FloatTensor : RankedTensorOf<[AnyFloat]>;
def Kiln_IndexTensor : RankedTensorOf<[AnySignlessInteger]>;

//===----------------------------------------------------------------------===//
// Weights and quantization
//===----------------------------------------------------------------------===//

def Kiln_WeightOp : Kiln_Op<"weight", [Pure]> {
  let summary = "a named constant whose bytes live outside the IR";
  let description = [{
    A model parameter stored in an external file: `source` names the file (the model
    file or a weights section), `offset` is the byte offset of its first element, and
    the result type gives shape and element type. A quantized weight has a
    `!kiln.quant` element type and is stored packed. Weights of gigabytes never become
    MLIR attributes; the artifact writer copies or maps the bytes.

    With `permutation`, the file holds the tensor's transpose and the writer permutes
    the elements into the artifact (dimension i of the result is dimension
    `permutation[i]` of the stored tensor, as in `linalg.transpose`): a layout chosen
    at compile time costs nothing at run time. Packed (`!kiln.quant`) weights cannot
    be permuted.

    With `source_scheme`, the file holds the weight packed in that scheme and the
    writer converts it into the type's (`q4_0`, `q8_0`, `q5_0`, `q4_k`, `q6_k` into kiln's
    interleaved `q4_0x16`, `q8_0x16`, `q5_0x16`, `q4_kx16`, `q6_kx16`, which `kiln-interleave-weights` chooses); without it, the file holds
    the type's own layout.

    With `input_scale` (AWQ's per-input-channel scales, `kiln-awq-scale`), the writer
    multiplies every element [..., j] of the tensor (after `permutation`) by
    `input_scale[j]` before storing it: an f32 weight, or float bytes it packs
    (`source_scheme` f32, f16 or bf16). The products that read the weight see the
    scaled values; the pass that sets it divides their other operand by the same
    scales.

    ```mlir
    %w = kiln.weight "blk.0.attn_q.weight" from "model.gguf"[4096]
           : tensor<64x64x!kiln.quant<q4_0>>
    %t = kiln.weight "encoder.layer.0.attention.self.query.weight" from "model.safetensors"[128]
           {permutation = array<i64: 1, 0>} : tensor<384x1536xf32>
    ```
  }];
  let arguments = (ins StrAttr:$name, StrAttr:$source,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$offset,
                       OptionalAttr<DenseI64ArrayAttr>:$permutation,
                       OptionalAttr<StrAttr>:$source_scheme,
                       OptionalAttr<DenseF32ArrayAttr>:$input_scale);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = "$name `from` $source `[` $offset `]` attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Kiln_DequantizeOp : Kiln_Op<"dequantize", [Pure, AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<InferTypeOpInterface>]> {
  let summary = "unpacks a quantized tensor into f32";
  let description = [{
    Turns a tensor with a `!kiln.quant` element type into the f32 tensor of the same
    shape. Block formats carry their scales (layouts as in ggml: `q8_0`, `q4_0`,
    `q4_k`, `q6_k`); the group-wise formats take `scales` (and optionally
    `zero_points`) shaped like the input with the innermost dimension divided by the
    group size: `value = (q - zero_point) * scale`. `int8` values are signed bytes
    (implicit zero point 0); `int4` values are unsigned nibbles, two per byte, the even
    element in the low nibble (implicit zero point 8). Fusion puts this op inside the consuming matmul's
    kernel, so packed weights are never materialized as floats in memory.

    ```mlir
    %f = kiln.dequantize %w scales(%s : tensor<64x2xf32>) : tensor<64x256x!kiln.quant<int4, group = 128>>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input,
                       Optional<Kiln_FloatTensor>:$scales,
                       Optional<AnyRankedTensor>:$zero_points);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $input (`scales` `(` $scales^ `:` type($scales) `)`)?
    (`zero_points` `(` $zero_points^ `:` type($zero_points) `)`)?
    attr-dict `:` type($input)
  }];
}

//===----------------------------------------------------------------------===//
// Transformer building blocks
//===----------------------------------------------------------------------===//

def Kiln_RmsNormOp : Kiln_Op<"rms_norm", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "root-mean-square normalization over the innermost dimension";
  let description = [{
    `result = input / sqrt(mean(input^2, axis=-1) + epsilon) * weight`, where `weight`
    is a vector as long as the innermost dimension (RMSNorm, Zhang & Sennrich 2019).
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$weight,
                       DefaultValuedAttr<F32Attr, "1e-6">:$epsilon);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` type($input) `,` type($weight)";
  let hasVerifier = 1;
}

def Kiln_RopeOp : Kiln_Op<"rope", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "rotary position embedding";
  let description = [{
    Rotates pairs of elements of each head vector by an angle proportional to the
    token position (RoFormer, Su et al. 2021). `input` is `[..., seq, heads, head_dim]`,
    `positions` a vector of `seq` integer positions. Pair `i` of `rotary_dim` (default:
    all of `head_dim`) turns by `position * freq_scale * theta^(-2i/rotary_dim)`.
    `interleaved` pairs adjacent elements (GGUF llama); `neox` pairs element `i` with
    `i + rotary_dim/2` (Hugging Face, GPT-NeoX, Gemma).
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_IndexTensor:$positions,
                       F64Attr:$theta,
                       DefaultValuedAttr<F64Attr, "1.0">:$freq_scale,
                       OptionalAttr<I64Attr>:$rotary_dim,
                       DefaultValuedAttr<Kiln_RopeModeAttr, "::kiln::RopeMode::interleaved">:$mode);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $positions attr-dict `:` type($input) `,` type($positions)
  }];
  let hasVerifier = 1;
}

def Kiln_AttentionOp : Kiln_Op<"attention", [Pure, AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<InferTypeOpInterface>]> {
  let summary = "scaled dot-product attention with grouped-query heads";
  let description = [{
    `softmax(Q K^T * scale + mask) V` per head. `query` is `[..., S, Hq, D]`, `key`
    `[..., T, Hkv, D]`, `value` `[..., T, Hkv, Dv]`, the result `[..., S, Hq, Dv]`.
    The head counts are the shapes' head dimensions (so they cannot disagree with the
    data): `Hq` must be a multiple of `Hkv`, and query head `h` reads key/value head
    `h / (Hq / Hkv)` (grouped-query attention; `Hkv == Hq` is multi-head, `Hkv == 1`
    multi-query). `causal` masks key `j` from query `i` when `j > i + (T - S)`, which
    is the right rule when the last `S` of `T` positions are the queries. `mask`, if
    given, is an additive bias, either `[S, T]` (shared by every batch entry) or
    `[..., S, T]` with the query's batch dimensions (one per entry, e.g. the padding
    of each sequence in a batch). `scale` defaults to `1/sqrt(D)`.

    `query_offset` (a 1-element integer tensor `p`) places the queries among the keys
    at run time, as over a KV cache whose rows are positions: query `i` sees keys
    `j <= p + i`, and with `window` `W` only those with `p + i - j < W` (a sliding
    window). Keys outside `[p + 1 - W, p + S)` are then never read, so a decode step
    costs the rows that exist, not the cache's length. It excludes `causal`.

    `ring_positions` `N` makes the `T` key/value rows a ring buffer over positions
    `0 .. N - 1`, as `kiln.cache_write {ring}` fills it: position `t` is row `t mod T`.
    It needs a query offset and a window with `W + S - 1 <= T`: the pass's own `S` rows,
    written first, then never overwrite a row one of its queries still sees (a
    sliding-window layer's cache of `W + S - 1` rows instead of `N`). No mask then.
  }];
  let arguments = (ins Kiln_FloatTensor:$query, Kiln_FloatTensor:$key,
                       Kiln_FloatTensor:$value, Optional<Kiln_FloatTensor>:$mask,
                       Optional<Kiln_IndexTensor>:$query_offset,
                       UnitAttr:$causal, OptionalAttr<F64Attr>:$scale,
                       OptionalAttr<I64Attr>:$window,
                       OptionalAttr<I64Attr>:$ring_positions);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`mask` `(` $mask^ `:` type($mask) `)`)?
    (`offset` `(` $query_offset^ `:` type($query_offset) `)`)? attr-dict
    `:` type($query) `,` type($key) `,` type($value)
  }];
}

def Kiln_CacheWriteOp : Kiln_Op<"cache_write", [Pure,
    AllTypesMatch<["cache", "result"]>]> {
  let summary = "writes rows into a cache at a run-time row offset";
  let description = [{
    `result` is `cache` (`[T, ...]`) with its rows `[p, p + S)` replaced by `rows`
    (`[S, ...]`), `p` the one element of `offset`; rows that would fall past row
    `T - 1` are dropped (and a negative `p` writes none). A KV cache's update: when
    `cache` is a `kiln.state` argument and the result is returned as the same state
    (written in place), the kernel writes only the `S` rows, never the other `T - S`.

    With `ring` the cache is a ring buffer over positions: row `i` of `rows` (position
    `p + i`) goes to row `(p + i) mod T`, none is dropped past the end, those at negative
    positions are (see `ring_positions` of kiln.attention).
  }];
  let arguments = (ins AnyRankedTensor:$cache, AnyRankedTensor:$rows,
                       Kiln_IndexTensor:$offset, UnitAttr:$ring);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $rows `into` $cache `at` $offset attr-dict `:` type($rows) `into` type($cache) `,`
    type($offset)
  }];
  let hasVerifier = 1;
}

def Kiln_GatherOp : Kiln_Op<"gather", [Pure,
    DeclareOpInterfaceMethods<InferTypeOpInterface>]> {
  let summary = "selects slices of a table by integer indices (embedding lookup)";
  let description = [{
    `result[p..., i..., s...] = table[p..., indices[i...], s...]` along `axis`: the
    result shape is `table.shape[:axis] + indices.shape + table.shape[axis+1:]`. A
    quantized table (a packed token embedding) yields f32 rows, dequantized on the
    fly; only `axis = 0` is allowed then, since blocks run along the innermost
    dimension. Indices outside the table are clamped by kernels, never read out of
    bounds.
  }];
  let arguments = (ins AnyRankedTensor:$table, Kiln_IndexTensor:$indices,
                       DefaultValuedAttr<I64Attr, "0">:$axis);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $table `[` $indices `]` (`axis` `=` $axis^)? attr-dict `:` type($table) `,` type($indices)
  }];
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Recurrent building blocks (state-space models)
//===----------------------------------------------------------------------===//

def Kiln_CausalConv1dOp : Kiln_Op<"causal_conv1d", [Pure,
    DeclareOpInterfaceMethods<InferTypeOpInterface>]> {
  let summary = "depthwise causal 1-D convolution over a rolling window of earlier rows";
  let description = [{
    Mamba's short convolution along the sequence, one filter per channel. `input` is
    `[L, C]` (L new rows), `window` `[K - 1, C]` the K - 1 rows before them (the
    recurrent state), `weight` `[C, K]`. Over the rows `x = concat(window, input)`:

    `result[t, c] = sum_k weight[c, k] * x[t + k, c]` (`[L, C]`), and
    `new_window[i, c] = x[n + i, c]` (`[K - 1, C]`): the K - 1 rows before row `n`
    of the input, where `n` is the one element of `length` (rows that count, clamped
    to `[0, L]`; a padded prefill batch leaves the rows past its prompt out of the
    state) or `L` without it.

    Each element of `new_window` depends on the old window only through rows
    `window[n + i]`, so a kernel updating the state in place must read the old window
    completely before writing (the Halide kernel computes the new window first).

    ```mlir
    %y, %w = kiln.causal_conv1d %x, %window, %weight length(%n : tensor<1xi64>)
        : tensor<8x64xf32>, tensor<3x64xf32>, tensor<64x4xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$window,
                       Kiln_FloatTensor:$weight, Optional<Kiln_IndexTensor>:$length);
  let results = (outs Kiln_FloatTensor:$result, Kiln_FloatTensor:$new_window);
  let assemblyFormat = [{
    $input `,` $window `,` $weight (`length` `(` $length^ `:` type($length) `)`)? attr-dict
    `:` type($input) `,` type($window) `,` type($weight)
  }];
}

def Kiln_SelectiveScanOp : Kiln_Op<"selective_scan", [Pure,
    DeclareOpInterfaceMethods<InferTypeOpInterface>]> {
  let summary = "Mamba's selective state-space scan (S6) over a sequence";
  let description = [{
    The recurrence of Mamba (Gu & Dao 2023, Algorithm 2) with its discretization, over
    `L` rows and `D` channels with `N` states each. `input` (x) and `delta` (the step,
    already positive: softplus is the caller's) are `[L, D]`, `a` is `[D, N]`, `b` and
    `c` are `[L, N]`, `state` (h) is `[D, N]`. For t = 0 .. L - 1:

    `h[d, n] = exp(delta[t, d] * a[d, n]) * h[d, n] + b[t, n] * (x[t, d] * delta[t, d])`
    `result[t, d] = sum_n h[d, n] * c[t, n]`

    `new_state` is h after the first `n` rows, `n` the one element of `length`
    (clamped to `[0, L]`; the rows of a padded prefill batch past the prompt do not
    touch the state), or after all `L` without it. Each element of `new_state` reads
    only the same element of `state`, so the state may be updated in place.

    ```mlir
    %y, %h = kiln.selective_scan %x, %dt, %a, %b, %c, %h0
        : tensor<8x64xf32>, tensor<8x64xf32>, tensor<64x16xf32>, tensor<8x16xf32>,
          tensor<8x16xf32>, tensor<64x16xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$delta,
                       Kiln_FloatTensor:$a, Kiln_FloatTensor:$b, Kiln_FloatTensor:$c,
                       Kiln_FloatTensor:$state, Optional<Kiln_IndexTensor>:$length);
  let results = (outs Kiln_FloatTensor:$result, Kiln_FloatTensor:$new_state);
  let assemblyFormat = [{
    $input `,` $delta `,` $a `,` $b `,` $c `,` $state
    (`length` `(` $length^ `:` type($length) `)`)? attr-dict
    `:` type($input) `,` type($delta) `,` type($a) `,` type($b) `,` type($c) `,` type($state)
  }];
}

def Kiln_WkvOp : Kiln_Op<"wkv", [Pure,
    DeclareOpInterfaceMethods<InferTypeOpInterface>]> {
  let summary = "RWKV-6's time-mix recurrence (WKV) over a sequence";
  let description = [{
    The linear-attention recurrence of RWKV-6 ("Finch", Peng et al. 2024) with
    data-dependent decay, per head. `receptance` (r), `key` (k), `value` (v) and `decay`
    (w, already in (0, 1): exp(-exp(...)) is the caller's) are `[L, H, S]`, `bonus` (u,
    llama.cpp's `time_mix_first`) is `[H, S]`, `state` is `[H, S, S]` (key index, then
    value index). For t = 0 .. L - 1, per head h, with kv[i, j] = k[t, h, i] * v[t, h, j]:

    `result[t, h, j] = sum_i r[t, h, i] * (u[h, i] * kv[i, j] + state[h, i, j])`
    `state[h, i, j] = state[h, i, j] * w[t, h, i] + kv[i, j]`

    `new_state` is the state after the first `n` rows, `n` the one element of `length`
    (clamped to `[0, L]`: a padded prefill batch's padding does not touch it), or after
    all `L` without it. Each element of `new_state` reads only the same element of
    `state`, so the state may be updated in place.

    ```mlir
    %y, %s = kiln.wkv %r, %k, %v, %w, %u, %s0
        : tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<8x4x16xf32>, tensor<8x4x16xf32>,
          tensor<4x16xf32>, tensor<4x16x16xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$receptance, Kiln_FloatTensor:$key,
                       Kiln_FloatTensor:$value, Kiln_FloatTensor:$decay,
                       Kiln_FloatTensor:$bonus, Kiln_FloatTensor:$state,
                       Optional<Kiln_IndexTensor>:$length);
  let results = (outs Kiln_FloatTensor:$result, Kiln_FloatTensor:$new_state);
  let assemblyFormat = [{
    $receptance `,` $key `,` $value `,` $decay `,` $bonus `,` $state
    (`length` `(` $length^ `:` type($length) `)`)? attr-dict
    `:` type($receptance) `,` type($key) `,` type($value) `,` type($decay) `,` type($bonus)
    `,` type($state)
  }];
}

def Kiln_Wkv7Op : Kiln_Op<"wkv7", [Pure,
    AllTypesMatch<["receptance", "decay", "key", "value", "a", "b"]>,
    DeclareOpInterfaceMethods<InferTypeOpInterface>]> {
  let summary = "RWKV-7's time-mix recurrence (the generalized delta rule) over a sequence";
  let description = [{
    The recurrence of RWKV-7 ("Goose"), per head. `receptance` (r), `decay` (w, in
    (0, 1)), `key` (k), `value` (v), `a` and `b` are `[L, H, S]`, `state` is `[H, S, S]`
    (value index, then key index: llama.cpp's layout). For t = 0 .. L - 1, per head h:

    `sa[i] = sum_j a[t, h, j] * state[h, i, j]`
    `state[h, i, j] = state[h, i, j] * w[t, h, j] + v[t, h, i] * k[t, h, j] + sa[i] * b[t, h, j]`
    `result[t, h, i] = sum_j state[h, i, j] * r[t, h, j]` (the updated state)

    `new_state` is the state after the first `n` rows (`length`, clamped to `[0, L]`), or
    after all `L` without it. Each element of `new_state` reads the old state's row `i`
    only, so the state may be updated in place.
  }];
  let arguments = (ins Kiln_FloatTensor:$receptance, Kiln_FloatTensor:$decay,
                       Kiln_FloatTensor:$key, Kiln_FloatTensor:$value, Kiln_FloatTensor:$a,
                       Kiln_FloatTensor:$b, Kiln_FloatTensor:$state,
                       Optional<Kiln_IndexTensor>:$length);
  let results = (outs Kiln_FloatTensor:$result, Kiln_FloatTensor:$new_state);
  let assemblyFormat = [{
    $receptance `,` $decay `,` $key `,` $value `,` $a `,` $b `,` $state
    (`length` `(` $length^ `:` type($length) `)`)? attr-dict
    `:` type($receptance) `,` type($state)
  }];
}

//===----------------------------------------------------------------------===//
// Kernels
//===----------------------------------------------------------------------===//

def Kiln_DispatchOp : Kiln_Op<"dispatch", [IsolatedFromAbove, SingleBlock,
    RecursiveMemoryEffects]> {
  let summary = "a region of ops that becomes exactly one kernel";
  let description = [{
    The unit of code generation: the backend turns each dispatch into one kernel
    (one Halide pipeline), the memory planner gives its results arena slots and the
    runtime launches it once. The region is isolated from above: everything it reads
    comes in through `inputs`, which become the entry block's arguments in order, and
    `kiln.yield` returns its results.

    ```mlir
    %r = kiln.dispatch ins(%a, %b : tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> {
    ^bb0(%x: tensor<4xf32>, %y: tensor<4xf32>):
      %s = arith.addf %x, %y : tensor<4xf32>
      kiln.yield %s : tensor<4xf32>
    }
    ```
  }];
  let arguments = (ins Variadic<AnyType>:$inputs);
  let results = (outs Variadic<AnyType>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    (`ins` `(` $inputs^ `:` type($inputs) `)`)? (`->` type($results)^)?
    attr-dict-with-keyword $body
  }];
  let hasRegionVerifier = 1;
  let hasCanonicalizer = 1;
  let extraClassDeclaration = [{
    /// The terminator of the body.
    YieldOp getYield();
  }];
}

def Kiln_YieldOp : Kiln_Op<"yield", [Pure, Terminator, ReturnLike,
    HasParent<"DispatchOp">]> {
  let summary = "returns the results of a kiln.dispatch";
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "attr-dict ($values^ `:` type($values))?";
}

#endif // KILN_OPS_TD
