// kiln's compiler passes. Each is defined in compiler/Transforms/<Name>.cpp and tested
// in test/Transforms/<pass-name>.mlir.
#ifndef KILN_COMPILER_PASSES_TD
#define KILN_COMPILER_PASSES_TD

include "mlir/Pass/PassBase.td"

def FoldWeightLayouts : Pass<"kiln-fold-weight-layouts", "mlir::func::FuncOp"> {
  let summary = "Turns transposes of weights into weights stored transposed";
  let description = [{
    A `linalg.transpose` of a `kiln.weight` (an importer's transposed copy of a
    Linear layer's [out, in] matrix, so that the matmul reads B along its rows) becomes
    a `kiln.weight` with a `permutation`: the artifact writer permutes the elements
    once, at compile time, instead of a kernel copying the weight on every run
    (all-MiniLM-L6-v2 spent 29% of a batch-1 run transposing its weights). Transposes
    of a permuted weight compose. Packed (`!kiln.quant`) weights are left alone.
  }];
  let dependentDialects = ["kiln::KilnDialect"];
}

def InterleaveWeights : Pass<"kiln-interleave-weights", "mlir::func::FuncOp"> {
  let summary = "Stores q4_0, q8_0, q5_0, q4_k and q6_k weights with the blocks of 16 rows interleaved";
  let description = [{
    A `q4_0` (`q8_0`, `q5_0`, `q4_k`, `q6_k`) weight of two dimensions whose rows are a multiple of 16 and that
    only `kiln.dequantize` reads becomes a `q4_0x16` (`q8_0x16`, `q5_0x16`, `q4_kx16`, `q6_kx16`) weight converted from the
    file's bytes when the artifact is written (`source_scheme`): per 16 rows and block
    of 32 values, the rows' values interleaved so that one vector holds a pair of
    consecutive values of 16 rows, and the 16 scales together. A product with one row
    (decoding a token) then takes 16 output columns per vector: one 2-term integer
    dot product (pmaddwd) per pair of values instead of decoding each row's block
    alone and adding its lanes up (AMD Zen 4: 2.7x faster at one thread). The bytes
    are the same in number (`q4_kx16`: 2.8% more, its 6-bit scales and mins stored
    as bytes). A table a quantized `kiln.gather` also reads (a tied embedding) is
    interleaved too: the gather decodes a token's row from 16 rows' blocks, which
    costs little, and the output projection over it runs at the interleaved speed
    (Gemma 3's 262144 x 640 Q8_0 head: 6.2 -> 4.7 ms per token on 2 threads).
  }];
  let dependentDialects = ["kiln::KilnDialect"];
}

def QuantizeWeights : Pass<"kiln-quantize-weights", "mlir::func::FuncOp"> {
  let summary = "Packs the float weights of products and embedding tables into int8 or int4 blocks";
  let description = [{
    Weight-only quantization of a float model. A 2-D f32/f16/bf16 `kiln.weight` read
    by a contraction (`linalg.matmul` or a `linalg.generic` that multiplies and adds,
    directly or through a widening copy) as a [K, N] or [N, K] operand becomes an
    [N, K] weight packed along K (the input channels), with `source_scheme` naming the
    file's float type: the artifact writer packs the bytes, and a `kiln.dequantize`
    feeds the product, which reads it as [N, K]. This is the form GGUF's packed
    weights take, so every kernel built for them (streamed decoding inside the GEMM,
    the integer matrix-vector product, the interleaved layouts) serves. `int8` is
    q8_0: each output channel in blocks of 32 input channels, one f16 scale per block
    (max |w| / 127), 8.5 bits a weight; `int4` is q4_0: blocks of 32, scale
    -(signed max) / 8, 4.5 bits a weight; `int4-zp` is q4_1: blocks of 32 with a scale
    (max - min) / 15 and a zero point (min), value d q + m, 5 bits a weight. A weight
    whose K is not a multiple of 32 stays float.

    Which weights stay float (`keep-float`, a comma-separated list): `embeddings`
    (tables read by `kiln.gather`), `head` (a product whose result reaches a function
    result through shape and elementwise ops only: an LM's logits, a classifier's
    last layer), and any other item keeps the weights whose names contain it. `none`
    quantizes everything it can. Norm scales and biases are 1-D and never quantized.
  }];
  let options = [
    Option<"scheme", "scheme", "std::string", "\"int8\"",
           "int8 (q8_0 blocks), int4 (q4_0 blocks) or int4-zp (q4_1 blocks)">,
    Option<"keepFloat", "keep-float", "std::string", "\"embeddings,head\"",
           "Comma-separated weights that stay float: embeddings, head, name substrings, or none">,
  ];
  let dependentDialects = ["kiln::KilnDialect"];
}

def ReturnProductInputs : Pass<"kiln-return-product-inputs", "mlir::func::FuncOp"> {
  let summary = "Returns the activations of every product with a float weight as extra results";
  let description = [{
    Calibration for AWQ (`kiln-compile --quantize=awq`): the activations a product
    multiplies a 2-D float weight with (the weights `kiln-quantize-weights` would pack;
    the other operand, whose innermost dimension is K) become an extra result of the
    function, named `<weight name>.input` (`kiln.name`; characters other than letters,
    digits, '.', '_' and '-' become '_'), so that running the float artifact on
    calibration inputs writes them next to its outputs. A weight that several
    products read is not exposed: its products get no AWQ scales.
  }];
  let dependentDialects = ["kiln::KilnDialect"];
}

def AwqScale : Pass<"kiln-awq-scale", "mlir::func::FuncOp"> {
  let summary = "Activation-aware per-input-channel scaling (AWQ) of packed float weights";
  let description = [{
    Runs after `kiln-quantize-weights`. For the products that read a float weight
    packed as q4_0, q4_1 (or q8_0) through `kiln.dequantize`, grouped by the activations
    they share (q, k, v; gate, up), it reads the activations that
    `kiln-return-product-inputs` exposed (`<dir>/<weight name>.input.npy`, in each of
    the `activations` directories, rows concatenated), and searches alpha in 0, 1/steps,
    ..., 1 for the scales s = mean|x|^alpha (normalized) minimizing the group's output
    error on them once W diag(s) is rounded to the weight's blocks (compiler/AwqSearch).
    Each weight gets `input_scale = s` (the artifact writer multiplies before packing);
    the activations are divided by s: folded into the RMSNorm that produces them when
    its scale is an f32 weight read by that norm only and every reader of the
    activations is in the group (exact: the norm's output is x / rms * w / s), and
    otherwise an elementwise multiply by the constant 1/s before the products, which
    fusion joins to its producer's kernel. A group whose best alpha is 0 keeps plain
    round-to-nearest and is left unchanged.
  }];
  let options = [
    Option<"activations", "activations", "std::string", "\"\"",
           "Comma-separated directories of <weight name>.input.npy calibration activations">,
    Option<"modelDir", "model-dir", "std::string", "\"\"",
           "Directory that relative kiln.weight sources are read from">,
    Option<"steps", "steps", "unsigned", "20",
           "Grid steps for alpha in [0, 1] (0: only alpha = 0, plain round-to-nearest)">,
  ];
  let dependentDialects = ["kiln::KilnDialect", "mlir::arith::ArithDialect",
                           "mlir::linalg::LinalgDialect", "mlir::tensor::TensorDialect"];
}

def FormDispatches : Pass<"kiln-form-dispatches", "mlir::func::FuncOp"> {
  let summary = "Wraps every kernel-producing op in its own kiln.dispatch region";
  let description = [{
    Makes kernels explicit: each op that computes a tensor (linalg ops, tensor-typed
    arith/math ops, and the named kiln ops) is moved into a `kiln.dispatch` region
    that becomes one kernel. Operands that are cheap to rematerialize (constant-shaped
    `tensor.empty`, scalar and splat `arith.constant`) are cloned into the region so
    they never occupy memory; everything else becomes a dispatch input. Ops already in
    a dispatch are left alone, so the pass is idempotent. Fusing several ops into one
    dispatch is a later pass's job.
  }];
  let dependentDialects = ["kiln::KilnDialect"];
}

def FuseElementwise : Pass<"kiln-fuse-elementwise", "mlir::func::FuncOp"> {
  let summary = "Merges elementwise producer dispatches into their only consumer";
  let description = [{
    A dispatch computing only elementwise `linalg.generic`s (all loops parallel, every
    indexing map a projected permutation) whose results are read by exactly one other
    dispatch is moved into that consumer when the consumer is elementwise too, or reads
    the values only as the initial value of its outputs (a fill feeding a matmul): the
    consumer's kernel computes them inline instead of reading them from memory, so a
    chain of elementwise ops becomes one kernel. A dispatch that only dequantizes
    packed weights is moved into its only reader whatever that reader is, so kernels
    read packed weights directly and no f32 copy of them is ever stored. Producers with
    several consumers, or whose result is returned, stay separate (recomputing them
    would duplicate work). An elementwise fusion that would put more than `max-ops`
    computing ops (generics, dequantizations) into one dispatch is not made (unpacking
    is fused whatever the size): Halide's compile time
    grows with the cube of an inlined chain's depth (a chain of 64 f32 Relus compiles in
    0.4 s, 128 in 1.3 s, 500 in 74 s), while splitting the chain costs one extra read
    and write of a tensor per `max-ops` ops.
  }];
  let options = [
    Option<"maxOps", "max-ops", "unsigned", "64",
           "Most generics and dequantizations one fused dispatch may hold">,
  ];
  let dependentDialects = ["kiln::KilnDialect"];
}

def MarkLibraryProducts : Pass<"kiln-mark-library-products", "mlir::func::FuncOp"> {
  let summary = "Marks float GEMM dispatches that a device library computes (cuBLAS)";
  let description = [{
    For a GPU target with a vendor GEMM library: a dispatch that is a plain float32
    GEMM (its one result a `linalg.generic` of loops (batch..., m, n, k) multiplying
    and accumulating two of its inputs into a zero fill, A read as [batch..., m, k] or
    [m, k], B as [batch..., k, n], [batch..., n, k], [k, n] or [n, k]) doing at least
    `min-flops` operations gets `kiln.library`, a dictionary saying how the library is
    called: `function` ("cublas.gemm"), the positions `a` and `b` of A and B among the
    dispatch's inputs, `batch`, `m`, `n`, `k`, the element strides between batches of
    A and B (0: one matrix for every batch) and `transpose_b` (B stored n x k). Runs
    before kiln-fuse-epilogues, which leaves marked dispatches alone: the library
    writes the product, and the epilogue (bias, activation, residual) is a kernel of its
    own that reads it. The backend still compiles the dispatch's own kernel, which the
    runtime runs where the library is missing, and its schedule may turn the library
    off for that kernel (the CUDA knob `gpu_library=0`). Products over packed weights,
    or with another initial value, or with extents beyond a 32-bit int, are not marked.
  }];
  let options = [
    Option<"library", "library", "std::string", "\"cublas\"",
           "The library: cublas (the only one)">,
    Option<"minFlops", "min-flops", "int64_t", "2097152",
           "Fewest multiply-adds times two a GEMM needs to be marked (smaller ones "
           "stay fused with their epilogues)">,
  ];
  let dependentDialects = ["kiln::KilnDialect"];
}

def FuseEpilogues : Pass<"kiln-fuse-epilogues", "mlir::func::FuncOp"> {
  let summary = "Merges an elementwise consumer into the contraction that feeds it";
  let description = [{
    A dispatch whose one result is a contraction over plain tensors (a `linalg.generic`
    with reduction loops: a matmul, a batched matmul, a convolution) is moved into its
    only consumer when that consumer is elementwise and reads the result only pointwise
    (as an input of generics at the point each of them writes): bias, activation,
    gating, residual adds, BatchNorm after a convolution. The backend computes such a
    kernel tile by tile and applies the epilogue to each tile while its accumulators are
    in registers, so the contraction's result is never stored and read back. One
    consumer per contraction (the fused dispatch is no longer elementwise); the
    elementwise chains it absorbs were formed by `kiln-fuse-elementwise` before.
    Dispatches that decode packed weights, or whose contraction is a kiln op
    (attention), are left alone: their kernels have schedules of their own; so are
    dispatches `kiln-mark-library-products` gave to a library (`kiln.library`).
  }];
  let dependentDialects = ["kiln::KilnDialect"];
}

def PlanMemory : Pass<"kiln-plan-memory", "mlir::func::FuncOp"> {
  let summary = "Assigns every dispatch result an offset in one arena";
  let description = [{
    Liveness over the dispatch order: a result lives from its dispatch to its last
    reader (through reshapes, which alias their source), or to the end when returned.
    A result takes the storage of an input whose last reader is its dispatch when the
    kernel reads that input only at the points it writes (linalg.generic ops without
    reductions, identity indexing maps, same shape and element size) and no other
    input views the same bytes; function arguments, weights and state are never given
    away. Otherwise a dispatch's results never overlap its inputs. Storage is placed
    64-byte aligned by the smaller of two greedy plans (first fit in program order,
    first fit largest first); when that exceeds the lower bound, a bounded search for
    a plan at the bound, or within 5% or 10% of it, may replace it. Results the
    function returns as persistent state (result attribute `kiln.state`) live in their
    state slot instead and take no arena space. Writes `kiln.arena_offsets` (one per
    result) on each dispatch, and on the function `kiln.arena_size`,
    `kiln.arena_lower_bound` (the largest set of simultaneously live bytes, each buffer
    rounded up to the alignment, a result in place and its input counted once) and
    `kiln.arena_in_place` (how many results took an input's storage).
  }];
  let options = [
    Option<"alignment", "alignment", "int64_t", "64", "Byte alignment of every offset">,
  ];
}

def SelectSchedules : Pass<"kiln-select-schedules", "mlir::func::FuncOp"> {
  let summary = "Records the schedule each dispatch's kernel is compiled with";
  let description = [{
    Sets `kiln.schedule` on dispatches: the backend compiles a dispatch's kernel with
    those knobs over its default schedule (which it derives from the lowered kernel:
    vector width, register tile) and rejects text it does not know, naming the knob.

    With the `schedule` option ("tile_rows=8 tile_vectors=3"), every dispatch takes
    those knobs. Otherwise, with `tuning-db` (a SQLite file written by kiln-tune) and
    `target` (the backend's resolved target string), each dispatch takes the best
    confirmed schedule the database holds for its kernel (kiln::tuningKey: ops,
    shapes, dtypes), this target and this compiler version; dispatches the database
    does not know keep the default. A missing database file is no database (nothing
    is created); a file that is not a kiln tuning database is an error.
  }];
  let options = [
    Option<"schedule", "schedule", "std::string", "\"\"",
           "Knobs every dispatch's kernel takes (empty: the backend's defaults)">,
    Option<"tuningDb", "tuning-db", "std::string", "\"\"",
           "Tuning database whose best schedules dispatches take (empty: none)">,
    Option<"target", "target", "std::string", "\"\"",
           "The backend's resolved target, part of the tuning database's key">,
  ];
  let dependentDialects = ["kiln::KilnDialect"];
}

#endif // KILN_COMPILER_PASSES_TD
