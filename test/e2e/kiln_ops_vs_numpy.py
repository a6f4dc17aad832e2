"""End-to-end numerics of kiln's named ops and packed weights: kiln IR written here
(weights in a side file), compiled by kiln-compile, run by kiln-run, compared with
numpy references written from the ops' definitions, and with the `gguf` package's
dequantization (an independent implementation of ggml's block formats).

usage: kiln_ops_vs_numpy.py BIN_DIR WORK_DIR [NAME_PART]
"""
import os
import subprocess
import sys

import numpy as np
from gguf import GGMLQuantizationType as GT
from gguf import quants

import ggml_blocks

rng = np.random.default_rng(20261123)


class Case:
    """One kiln function: its IR text, the weights file it reads, inputs and expected outputs."""

    def __init__(self, name, work):
        self.name, self.work = name, work
        self.weights = bytearray()
        self.weights_path = os.path.join(work, name + ".weights")
        self.inputs, self.expected = {}, {}
        self.rtol, self.atol = RTOL, ATOL
        self.compile_args = []

    def weight(self, data: bytes) -> int:
        offset = len(self.weights)
        self.weights += data
        return offset


def mlir_type(shape, element="f32"):
    return "tensor<" + "x".join(str(d) for d in shape) + ("x" if shape else "") + element + ">"


# Block scale fields (byte offset -> range): values stay O(1) whatever the random bits.
BLOCK_SCALES = {GT.Q8_0: {0: (0.01, 0.1)}, GT.Q4_0: {0: (0.01, 0.1)}, GT.Q5_0: {0: (0.01, 0.1)},
                GT.Q5_1: {0: (0.01, 0.1), 2: (-0.5, 0.5)}, GT.Q4_1: {0: (0.01, 0.1), 2: (-0.5, 0.5)},
                GT.Q4_K: {0: (0.01, 0.1), 2: (0.0, 0.05)}, GT.Q6_K: {208: (0.001, 0.01)}}


def random_blocks(qtype, rows, cols):
    return ggml_blocks.random_blocks(rng, qtype, rows, cols, BLOCK_SCALES[qtype])


def dequantize_ir(c, scheme, rows, cols, offset):
    """@main() -> y: the packed [rows, cols] weight at `offset` of the case's weights
    file, dequantized."""
    t = mlir_type([rows, cols], f"!kiln.quant<{scheme}>")
    return f'''func.func @main() -> ({mlir_type([rows, cols])} {{kiln.name = "y"}}) {{
  %w = kiln.weight "w" from "{c.weights_path}"[{offset}] : {t}
  %y = kiln.dequantize %w : {t}
  return %y : {mlir_type([rows, cols])}
}}'''


def dequantize_case(work, scheme, qtype, rows, cols):
    c = Case("dequantize_" + scheme, work)
    packed = random_blocks(qtype, rows, cols)
    offset = c.weight(packed.tobytes())
    c.expected["y"] = quants.dequantize(packed, qtype).astype(np.float32)
    c.ir = dequantize_ir(c, scheme, rows, cols, offset)
    return c


def every_half_scale_case(work):
    """Q8_0 blocks whose f16 scale takes every finite bit pattern (subnormals, zeros of
    both signs, the largest normals), each times quants -128..127: the scale's
    conversion to f32 must be exact."""
    c = Case("dequantize_q8_0_every_f16_scale", work)
    bits = np.arange(1 << 16, dtype=np.uint32)
    finite = bits[(bits & 0x7c00) != 0x7c00].astype(np.uint16)  # 63,488 patterns
    blocks = np.zeros((len(finite), 34), np.uint8)
    blocks[:, 0:2] = finite.view(np.uint8).reshape(-1, 2)
    quants_ = rng.integers(-128, 128, (len(finite), 32), dtype=np.int8)
    blocks[:, 2:] = quants_.view(np.uint8)
    rows, cols = len(finite) // 32, 32 * 32
    offset = c.weight(blocks.tobytes())
    c.expected["y"] = (finite.view(np.float16).astype(np.float32)[:, None] *
                       quants_.astype(np.float32)).reshape(rows, cols)
    c.rtol, c.atol = 0.0, 0.0
    c.ir = dequantize_ir(c, "q8_0", rows, cols, offset)
    return c


def grouped_case(work, scheme, rows, cols, group, zero_points):
    c = Case(f"dequantize_{scheme}_g{group}" + ("_zp" if zero_points else ""), work)
    scales = rng.uniform(0.01, 0.1, (rows, cols // group)).astype(np.float32)
    if scheme == "int8":
        q = rng.integers(-128, 128, (rows, cols), dtype=np.int8)
        packed, values = q.view(np.uint8), q.astype(np.float32)
        zp = rng.integers(-3, 4, (rows, cols // group)).astype(np.float32)
        implicit = 0.0
    else:
        q = rng.integers(0, 16, (rows, cols), dtype=np.uint8)
        packed, values = (q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8), q.astype(np.float32)
        zp = rng.integers(6, 11, (rows, cols // group)).astype(np.float32)
        implicit = 8.0
    offset = c.weight(packed.tobytes())
    c.inputs["scales"] = scales
    zero = np.repeat(zp, group, axis=1) if zero_points else implicit
    c.expected["y"] = ((values - zero) * np.repeat(scales, group, axis=1)).astype(np.float32)
    t = mlir_type([rows, cols], f"!kiln.quant<{scheme}, group = {group}>")
    st = mlir_type([rows, cols // group])
    zp_arg = f', %z: {st} {{kiln.name = "zero_points"}}' if zero_points else ""
    zp_use = f" zero_points(%z : {st})" if zero_points else ""
    if zero_points:
        c.inputs["zero_points"] = zp
    c.ir = f'''func.func @main(%s: {st} {{kiln.name = "scales"}}{zp_arg}) -> ({mlir_type([rows, cols])} {{kiln.name = "y"}}) {{
  %w = kiln.weight "w" from "{c.weights_path}"[{offset}] : {t}
  %y = kiln.dequantize %w scales(%s : {st}){zp_use} : {t}
  return %y : {mlir_type([rows, cols])}
}}'''
    return c


def matmul_case(work, scheme, qtype, rows):
    """A packed weight read by a matmul: the dequantization runs inside the matmul kernel.
    11 rows are a whole and a partial tile of streamed rows; 1 row is a decode step."""
    c = Case(f"matmul_{scheme}_{rows}", work)
    c.compile_args = ["--activations=f32"]  # the reference's activations are f32
    packed = random_blocks(qtype, 64, 512)
    offset = c.weight(packed.tobytes())
    x = rng.standard_normal((rows, 512)).astype(np.float32)
    c.inputs["x"] = x
    w = quants.dequantize(packed, qtype).astype(np.float64)
    c.expected["y"] = (x.astype(np.float64) @ w.T).astype(np.float32)
    # A 512-term f32 sum errs by up to ~512 ulps of the sum of the terms' magnitudes
    # (random K-quant blocks give weights up to ~90), so the bound scales with it.
    c.atol = float(64 * np.finfo(np.float32).eps * (np.abs(x) @ np.abs(w).T).max())
    t = mlir_type([64, 512], f"!kiln.quant<{scheme}>")
    c.ir = f'''#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
func.func @main(%x: tensor<{rows}x512xf32> {{kiln.name = "x"}}) -> (tensor<{rows}x64xf32> {{kiln.name = "y"}}) {{
  %w = kiln.weight "w" from "{c.weights_path}"[{offset}] : {t}
  %wf = kiln.dequantize %w : {t}
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<{rows}x64xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<{rows}x64xf32>) -> tensor<{rows}x64xf32>
  %y = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %wf : tensor<{rows}x512xf32>, tensor<64x512xf32>) outs(%acc : tensor<{rows}x64xf32>) -> tensor<{rows}x64xf32>
  return %y : tensor<{rows}x64xf32>
}}'''
    return c


def int8_matvec_case(work, scheme, qtype, bias, rows=64, depth=512):
    """kiln-compile --activations=int8 (the default): a one-row product with packed blocks quantizes
    the row to 8-bit blocks of 32 (scale max|x| / 127, values round(x / scale)) and sums
    (u - offset) * q in integers. The reference does exactly that in float64, so the
    bound is f32 rounding of the block terms, not the quantization's error; a
    quantization slip (a wrong scale, offset or rounding) is far outside it."""
    shape = "" if (rows, depth) == (64, 512) else f"_{rows}x{depth}"
    c = Case(f"int8_matvec_{scheme}{shape}{'_bias' if bias else ''}", work)
    c.compile_args = ["--activations=int8"]
    packed = random_blocks(qtype, rows, depth)
    offset = c.weight(packed.tobytes())
    x = rng.standard_normal((1, depth)).astype(np.float32)
    c.inputs["x"] = x
    blocks = x.astype(np.float64).reshape(-1, 32)
    scale = np.abs(blocks).max(-1, keepdims=True) / 127.0
    q = np.round(blocks / np.where(scale > 0, scale, 1.0))
    xq = (q * scale).reshape(1, depth)
    w = quants.dequantize(packed, qtype).astype(np.float64)
    init = np.zeros((1, rows), np.float32)
    if bias:
        init = rng.standard_normal((1, rows)).astype(np.float32)
        c.inputs["b"] = init
    c.expected["y"] = (init.astype(np.float64) + xq @ w.T).astype(np.float32)
    c.atol = float(64 * np.finfo(np.float32).eps * (np.abs(xq) @ np.abs(w).T).max())
    t = mlir_type([rows, depth], f"!kiln.quant<{scheme}>")
    bias_arg = f', %b: tensor<1x{rows}xf32> {{kiln.name = "b"}}' if bias else ""
    zero_init = ("  %zero = arith.constant 0.0 : f32\n"
                 f"  %e = tensor.empty() : tensor<1x{rows}xf32>\n"
                 f"  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<1x{rows}xf32>) -> tensor<1x{rows}xf32>\n")
    init_ir, acc = ("", "%b") if bias else (zero_init, "%acc")
    c.ir = (
        "#mk = affine_map<(m, n, k) -> (m, k)>\n"
        "#nk = affine_map<(m, n, k) -> (n, k)>\n"
        "#mn = affine_map<(m, n, k) -> (m, n)>\n"
        f'func.func @main(%x: tensor<1x{depth}xf32> {{kiln.name = "x"}}{bias_arg}) -> (tensor<1x{rows}xf32> {{kiln.name = "y"}}) {{\n'
        f'  %w = kiln.weight "w" from "{c.weights_path}"[{offset}] : {t}\n'
        f"  %wf = kiln.dequantize %w : {t}\n"
        f"{init_ir}"
        f"  %y = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %wf : tensor<1x{depth}xf32>, tensor<{rows}x{depth}xf32>) outs({acc} : tensor<1x{rows}xf32>) -> tensor<1x{rows}xf32>\n"
        f"  return %y : tensor<1x{rows}xf32>\n}}")
    return c


def float_matvec_case(work, columns):
    """One row times a float [columns, 1024] weight read in place: threads take chunks
    of the output columns. With 640 columns the chunks do not divide the row, which once
    summed the last vector's terms three times (Halide 14, nested guarded splits)."""
    c = Case(f"float_matvec_{columns}", work)
    x = rng.standard_normal((1, 1024)).astype(np.float32)
    w = rng.standard_normal((columns, 1024)).astype(np.float32)
    c.inputs["x"], c.inputs["w"] = x, w
    c.expected["y"] = (x.astype(np.float64) @ w.astype(np.float64).T).astype(np.float32)
    # A 1024-term f32 sum of O(1) products errs by a few ulps of its magnitude (~32).
    c.atol = float(1024 * np.finfo(np.float32).eps * (np.abs(x) @ np.abs(w).T).max())
    y, wt = mlir_type([1, columns]), mlir_type([columns, 1024])
    c.ir = f'''func.func @main(%x: tensor<1x1024xf32> {{kiln.name = "x"}}, %w: {wt} {{kiln.name = "w"}}) -> ({y} {{kiln.name = "y"}}) {{
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : {y}
  %acc = linalg.fill ins(%zero : f32) outs(%e : {y}) -> {y}
  %r = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>] ins(%x, %w : tensor<1x1024xf32>, {wt}) outs(%acc : {y}) -> {y}
  return %r : {y}
}}'''
    return c


def half_matvec_case(work, element, columns, depth, subnormal=False, x_scale=1.0):
    """One row times a 16-bit float weight read from the weights file and widened in
    registers (kiln's own f16 conversion, not Halide's): f16 weights include
    subnormals, signed zeros and the largest finite value; bf16 ones span f32's range;
    `subnormal`: every f16 weight a subnormal (or zero), so that the bound (relative to
    the largest output) would catch them read as zero or mis-scaled. The reference
    widens the same bits exactly (numpy), so only the f32 sum errs."""
    scaled = f"_x{x_scale:g}" if x_scale != 1.0 else ""
    c = Case(f"{element}_matvec_{columns}x{depth}{'_subnormal' if subnormal else ''}{scaled}", work)
    x = (rng.standard_normal((1, depth)) * x_scale).astype(np.float32)
    if subnormal:
        mantissa = rng.integers(0, 1024, (columns, depth)) * rng.choice([-1, 1], (columns, depth))
        w = (mantissa * 2.0 ** -24).astype(np.float16)
        stored, wide = w.tobytes(), w.astype(np.float64)
    elif element == "f16":
        w = rng.standard_normal((columns, depth)).astype(np.float16)
        flat = w.reshape(-1)
        special = np.array([6e-8, -6e-8, 3.1e-5, -4.5e-6, 0.0, -0.0, 65504.0, -65504.0,
                            6.1e-5, 1e-3], np.float16)
        flat[: 997 * len(special): 997] = special  # spread over rows and columns
        stored, wide = w.tobytes(), w.astype(np.float64)
    else:
        f = (rng.standard_normal((columns, depth)) * np.exp2(rng.integers(-60, 60, (columns, depth)))).astype(np.float32)
        bits = (f.view(np.uint32) >> 16).astype(np.uint16)
        stored, wide = bits.tobytes(), (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    offset = c.weight(stored)
    c.inputs["x"] = x
    c.expected["y"] = (x.astype(np.float64) @ wide.T).astype(np.float32)
    c.atol = float(depth * np.finfo(np.float32).eps * (np.abs(x) @ np.abs(wide).T).max())
    y, wf, wt = mlir_type([1, columns]), mlir_type([columns, depth]), mlir_type([columns, depth], element)
    c.ir = f'''func.func @main(%x: tensor<1x{depth}xf32> {{kiln.name = "x"}}) -> ({y} {{kiln.name = "y"}}) {{
  %w = kiln.weight "w" from "{c.weights_path}"[{offset}] : {wt}
  %ew = tensor.empty() : {wf}
  %wf = linalg.generic {{indexing_maps = [affine_map<(n, k) -> (n, k)>, affine_map<(n, k) -> (n, k)>], iterator_types = ["parallel", "parallel"]}} ins(%w : {wt}) outs(%ew : {wf}) {{
  ^bb0(%in: {element}, %out: f32):
    %c = arith.extf %in : {element} to f32
    linalg.yield %c : f32
  }} -> {wf}
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : {y}
  %acc = linalg.fill ins(%zero : f32) outs(%e : {y}) -> {y}
  %r = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>] ins(%x, %wf : tensor<1x{depth}xf32>, {wf}) outs(%acc : {y}) -> {y}
  return %r : {y}
}}'''
    return c


def grouped_matmul_case(work, rows):
    """A group-wise int4 weight with zero points read by a matmul (scales and zero
    points are kernel inputs beside the packed bytes)."""
    c = Case(f"matmul_int4_g64_zp_{rows}", work)
    n, k, group = 32, 256, 64
    q = rng.integers(0, 16, (n, k), dtype=np.uint8)
    offset = c.weight((q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8).tobytes())
    scales = rng.uniform(0.01, 0.1, (n, k // group)).astype(np.float32)
    zp = rng.integers(6, 11, (n, k // group)).astype(np.float32)
    x = rng.standard_normal((rows, k)).astype(np.float32)
    c.inputs.update(x=x, scales=scales, zero_points=zp)
    w = (q - np.repeat(zp, group, axis=1)) * np.repeat(scales, group, axis=1)
    c.expected["y"] = (x.astype(np.float64) @ w.T.astype(np.float64)).astype(np.float32)
    t, st = mlir_type([n, k], f"!kiln.quant<int4, group = {group}>"), mlir_type([n, k // group])
    xt, yt = mlir_type([rows, k]), mlir_type([rows, n])
    c.ir = f'''#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
func.func @main(%x: {xt} {{kiln.name = "x"}}, %s: {st} {{kiln.name = "scales"}}, %z: {st} {{kiln.name = "zero_points"}}) -> ({yt} {{kiln.name = "y"}}) {{
  %w = kiln.weight "w" from "{c.weights_path}"[{offset}] : {t}
  %wf = kiln.dequantize %w scales(%s : {st}) zero_points(%z : {st}) : {t}
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : {yt}
  %acc = linalg.fill ins(%zero : f32) outs(%e : {yt}) -> {yt}
  %y = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %wf : {xt}, {mlir_type([n, k])}) outs(%acc : {yt}) -> {yt}
  return %y : {yt}
}}'''
    return c


def gather_case(work, scheme, qtype, rows=50):
    """Rows of a packed table; with rows a multiple of 16 the table is stored
    interleaved (kiln-interleave-weights) and each row decoded from 16 rows' blocks."""
    c = Case(f"gather_{scheme}" + ("" if rows == 50 else f"_{rows}"), work)
    cols = 256
    packed = random_blocks(qtype, rows, cols)
    offset = c.weight(packed.tobytes())
    ids = np.array([[3, rows - 1, 0], [7, 7, 12]], np.int32)
    c.inputs["ids"] = ids
    c.expected["y"] = quants.dequantize(packed, qtype).astype(np.float32)[ids]
    t = mlir_type([rows, cols], f"!kiln.quant<{scheme}>")
    c.ir = f'''func.func @main(%ids: tensor<2x3xi32> {{kiln.name = "ids"}}) -> (tensor<2x3x256xf32> {{kiln.name = "y"}}) {{
  %t = kiln.weight "embd" from "{c.weights_path}"[{offset}] : {t}
  %y = kiln.gather %t[%ids] : {t}, tensor<2x3xi32>
  return %y : tensor<2x3x256xf32>
}}'''
    return c


def rms_norm_case(work):
    c = Case("rms_norm", work)
    x = rng.standard_normal((4, 3, 64)).astype(np.float32)
    w = rng.standard_normal(64).astype(np.float32)
    offset = c.weight(w.tobytes())
    eps = 1e-5
    c.inputs["x"] = x
    c.expected["y"] = (x / np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=-1, keepdims=True) + eps) * w).astype(np.float32)
    c.ir = f'''func.func @main(%x: tensor<4x3x64xf32> {{kiln.name = "x"}}) -> (tensor<4x3x64xf32> {{kiln.name = "y"}}) {{
  %w = kiln.weight "norm" from "{c.weights_path}"[{offset}] : tensor<64xf32>
  %y = kiln.rms_norm %x, %w {{epsilon = 1.0e-5 : f32}} : tensor<4x3x64xf32>, tensor<64xf32>
  return %y : tensor<4x3x64xf32>
}}'''
    return c


def tanh_case(work):
    """math.tanh, which kiln builds from a vector exp and an odd polynomial near 0: both
    sides of the switch at |x| = 1/4, tiny and large magnitudes, infinities."""
    c = Case("tanh", work)
    magnitudes = np.concatenate([np.logspace(-8, np.log10(30), 900), [0.0, 0.2499999, 0.25,
                                                                      0.2500001, np.inf]])
    x = np.concatenate([magnitudes, -magnitudes, rng.standard_normal(1118) * 3]).astype(np.float32)
    c.inputs["x"] = x
    c.expected["y"] = np.tanh(x.astype(np.float64)).astype(np.float32)
    # A few ulps (seen: 2.4e-7 relative, just above |x| = 1/4 where 1 - exp(-2|x|)
    # loses bits); libm's tanhf is within 1 ulp.
    c.rtol, c.atol = 5e-7, 1e-37
    n = len(x)
    c.ir = f'''#id = affine_map<(i) -> (i)>
func.func @main(%x: tensor<{n}xf32> {{kiln.name = "x"}}) -> (tensor<{n}xf32> {{kiln.name = "y"}}) {{
  %e = tensor.empty() : tensor<{n}xf32>
  %y = linalg.generic {{indexing_maps = [#id, #id], iterator_types = ["parallel"]}} ins(%x : tensor<{n}xf32>) outs(%e : tensor<{n}xf32>) {{
  ^bb0(%a: f32, %b: f32):
    %t = math.tanh %a : f32
    linalg.yield %t : f32
  }} -> tensor<{n}xf32>
  return %y : tensor<{n}xf32>
}}'''
    return c


def rope_reference(x, positions, theta, rotary, neox, freq_scale):
    out = x.astype(np.float64).copy()
    half = rotary // 2
    inv = theta ** (-2.0 * np.arange(half) / rotary)
    angle = positions[:, None].astype(np.float64) * freq_scale * inv[None, :]  # [S, half]
    cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
    if neox:
        a, b = x[..., :half], x[..., half:rotary]
        out[..., :half] = a * cos - b * sin
        out[..., half:rotary] = b * cos + a * sin
    else:
        a, b = x[..., 0:rotary:2], x[..., 1:rotary:2]
        out[..., 0:rotary:2] = a * cos - b * sin
        out[..., 1:rotary:2] = a * sin + b * cos
    return out.astype(np.float32)


def rope_case(work, neox, rotary):
    c = Case(f"rope_{'neox' if neox else 'interleaved'}_{rotary}", work)
    x = rng.standard_normal((5, 3, 16)).astype(np.float32)
    positions = np.array([0, 1, 2, 30, 511], np.int64)
    c.inputs.update(x=x, positions=positions)
    c.expected["y"] = rope_reference(x, positions, 10000.0, rotary, neox, 0.5)
    mode = "neox" if neox else "interleaved"
    c.ir = f'''func.func @main(%x: tensor<5x3x16xf32> {{kiln.name = "x"}}, %p: tensor<5xi64> {{kiln.name = "positions"}}) -> (tensor<5x3x16xf32> {{kiln.name = "y"}}) {{
  %y = kiln.rope %x, %p {{theta = 10000.0, freq_scale = 0.5, rotary_dim = {rotary}, mode = #kiln.rope_mode<{mode}>}} : tensor<5x3x16xf32>, tensor<5xi64>
  return %y : tensor<5x3x16xf32>
}}'''
    return c


def attention_case(work, mask_kind, batch=()):
    """Grouped-query attention over a [*batch, S, H, D] query, with the causal rule
    (mask_kind "causal"), one additive [S, T] mask ("shared") or one mask per batch
    entry, [*batch, S, T] ("per_entry")."""
    c = Case(f"attention_{mask_kind}_b{len(batch)}", work)
    s, t, hq, hkv, d, dv = 5, 7, 4, 2, 16, 8
    b = tuple(batch)
    q = rng.standard_normal(b + (s, hq, d)).astype(np.float32)
    k = rng.standard_normal(b + (t, hkv, d)).astype(np.float32)
    v = rng.standard_normal(b + (t, hkv, dv)).astype(np.float32)
    c.inputs.update(q=q, k=k, v=v)
    kk, vv = np.repeat(k, hq // hkv, axis=-2), np.repeat(v, hq // hkv, axis=-2)
    scores = np.einsum("...shd,...thd->...hst", q, kk) / np.sqrt(d)
    mask_shape = None
    if mask_kind == "causal":
        causal = np.arange(t)[None, :] > np.arange(s)[:, None] + (t - s)
        scores = np.where(causal, -np.inf, scores)
    else:
        mask_shape = (s, t) if mask_kind == "shared" else b + (s, t)
        mask = rng.standard_normal(mask_shape).astype(np.float32)
        if mask_kind == "per_entry":
            # Padding: each entry hides a different number of trailing keys.
            for i, entry in enumerate(np.ndindex(*b)):
                mask[entry][:, t - 1 - i % (t - 1):] = -1e9
        c.inputs["mask"] = mask
        scores = scores + mask[..., None, :, :]
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    c.expected["y"] = np.einsum("...hst,...thd->...shd", p, vv).astype(np.float32)
    qt, kt, vt = mlir_type(b + (s, hq, d)), mlir_type(b + (t, hkv, d)), mlir_type(b + (t, hkv, dv))
    yt = mlir_type(b + (s, hq, dv))
    mask_arg = f', %m: {mlir_type(mask_shape)} {{kiln.name = "mask"}}' if mask_shape else ""
    mask_use = f" mask(%m : {mlir_type(mask_shape)})" if mask_shape else ""
    attrs = " {causal}" if mask_kind == "causal" else ""
    c.ir = f'''func.func @main(%q: {qt} {{kiln.name = "q"}}, %k: {kt} {{kiln.name = "k"}}, %v: {vt} {{kiln.name = "v"}}{mask_arg}) -> ({yt} {{kiln.name = "y"}}) {{
  %y = kiln.attention %q, %k, %v{mask_use}{attrs} : {qt}, {kt}, {vt}
  return %y : {yt}
}}'''
    return c


def offset_attention_case(work, seq, offset, window, ring_spare=None):
    """Attention over a 24-row KV cache whose queries start at run-time position `offset`
    (query i sees keys j <= offset + i, with a window only those with offset + i - j <
    window): the decode/prefill form, whose kernel reads only the visible rows. With
    `ring_spare` (ring_positions), over a ring of window + seq - 1 + ring_spare rows
    holding the latest of 40 positions, position t in row t mod rows, as after the pass's
    own rows were written; the expected values come from the keys in position order."""
    ring = ring_spare is not None
    c = Case(f"attention_{'ring' if ring else 'offset'}_s{seq}_p{offset}_w{window}"
             + (f"_r{ring_spare}" if ring else ""), work)
    n, hq, hkv, d, dv = (40 if ring else 24), 4, 2, 16, 8
    q = rng.standard_normal((seq, hq, d)).astype(np.float32)
    k = rng.standard_normal((n, hkv, d)).astype(np.float32)
    v = rng.standard_normal((n, hkv, dv)).astype(np.float32)
    rows, stored_k, stored_v = n, k, v
    if ring:
        rows = window + seq - 1 + ring_spare
        stored_k = rng.standard_normal((rows, hkv, d)).astype(np.float32)  # stale rows: never read
        stored_v = rng.standard_normal((rows, hkv, dv)).astype(np.float32)
        for t in range(max(0, offset + seq - rows), offset + seq):
            stored_k[t % rows], stored_v[t % rows] = k[t], v[t]
    c.inputs.update(q=q, k=stored_k, v=stored_v, p=np.array([offset], dtype=np.int64))
    kk, vv = np.repeat(k, hq // hkv, axis=-2), np.repeat(v, hq // hkv, axis=-2)
    scores = np.einsum("shd,thd->hst", q.astype(np.float64), kk) / np.sqrt(d)
    position = offset + np.arange(seq)[:, None]
    key = np.arange(n)[None, :]
    hidden = key > position
    if window:
        hidden |= position - key >= window
    scores = np.where(hidden, -np.inf, scores)
    w = np.exp(scores - scores.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    c.expected["y"] = np.einsum("hst,thd->shd", w, vv).astype(np.float32)
    qt, kt, vt = mlir_type((seq, hq, d)), mlir_type((rows, hkv, d)), mlir_type((rows, hkv, dv))
    yt = mlir_type((seq, hq, dv))
    attrs = [f"window = {window}"] if window else []
    if ring:
        attrs.append(f"ring_positions = {n}")
    attrs = f" {{{', '.join(attrs)}}}" if attrs else ""
    c.ir = f'''func.func @main(%q: {qt} {{kiln.name = "q"}}, %k: {kt} {{kiln.name = "k"}}, %v: {vt} {{kiln.name = "v"}}, %p: tensor<1xi64> {{kiln.name = "p"}}) -> ({yt} {{kiln.name = "y"}}) {{
  %y = kiln.attention %q, %k, %v offset(%p : tensor<1xi64>){attrs} : {qt}, {kt}, {vt}
  return %y : {yt}
}}'''
    return c


def cache_write_case(work, count, offset, ring=False):
    """kiln.cache_write outside a state (so not in place): the cache with rows
    [offset, offset + count) replaced, those past the end dropped; with `ring`
    (kiln.cache_write {ring}) position offset + i goes to row (offset + i) mod rows and
    only negative positions are dropped."""
    c = Case(f"cache_write{'_ring' if ring else ''}_s{count}_p{offset}", work)
    t, h, d = (6 if ring else 12), 2, 8
    cache = rng.standard_normal((t, h, d)).astype(np.float32)
    rows = rng.standard_normal((count, h, d)).astype(np.float32)
    c.inputs.update(cache=cache, rows=rows, p=np.array([offset], dtype=np.int64))
    expected = cache.copy()
    for i in range(count):
        if ring and offset + i >= 0:
            expected[(offset + i) % t] = rows[i]
        elif 0 <= offset + i < t:
            expected[offset + i] = rows[i]
    c.expected["y"] = expected
    ct, rt = mlir_type((t, h, d)), mlir_type((count, h, d))
    attrs = " {ring}" if ring else ""
    c.ir = f'''func.func @main(%c: {ct} {{kiln.name = "cache"}}, %r: {rt} {{kiln.name = "rows"}}, %p: tensor<1xi64> {{kiln.name = "p"}}) -> ({ct} {{kiln.name = "y"}}) {{
  %y = kiln.cache_write %r into %c at %p{attrs} : {rt} into {ct}, tensor<1xi64>
  return %y : {ct}
}}'''
    return c


def causal_conv1d_case(work, rows, length):
    """kiln.causal_conv1d over [window; input] (channels not a multiple of a vector),
    and the new window after `length` rows (None: all)."""
    c = Case(f"causal_conv1d_l{rows}_n{length}", work)
    channels, taps = 20, 4
    x = rng.standard_normal((rows, channels)).astype(np.float32)
    window = rng.standard_normal((taps - 1, channels)).astype(np.float32)
    w = rng.standard_normal((channels, taps)).astype(np.float32)
    c.inputs.update(x=x, window=window, w=w)
    full = np.concatenate([window, x]).astype(np.float64)
    c.expected["y"] = np.stack([(full[t:t + taps] * w.T).sum(0) for t in range(rows)]).astype(np.float32)
    n = rows if length is None else min(max(length, 0), rows)
    c.expected["new_window"] = full[n:n + taps - 1].astype(np.float32)
    xt, wt, kt = mlir_type((rows, channels)), mlir_type((taps - 1, channels)), mlir_type((channels, taps))
    extra, use = "", ""
    if length is not None:
        c.inputs["n"] = np.array([length], dtype=np.int64)
        extra = ', %n: tensor<1xi64> {kiln.name = "n"}'
        use = " length(%n : tensor<1xi64>)"
    c.ir = f'''func.func @main(%x: {xt} {{kiln.name = "x"}}, %window: {wt} {{kiln.name = "window"}}, %w: {kt} {{kiln.name = "w"}}{extra}) -> ({xt} {{kiln.name = "y"}}, {wt} {{kiln.name = "new_window"}}) {{
  %y, %nw = kiln.causal_conv1d %x, %window, %w{use} : {xt}, {wt}, {kt}
  return %y, %nw : {xt}, {wt}
}}'''
    return c


def selective_scan_case(work, rows, states, length):
    """kiln.selective_scan from its definition (float64 reference), the state after
    `length` rows (None: all)."""
    c = Case(f"selective_scan_l{rows}_n{states}_len{length}", work)
    channels = 20
    x = rng.standard_normal((rows, channels)).astype(np.float32)
    dt = rng.uniform(0.01, 1.0, (rows, channels)).astype(np.float32)
    a = -rng.uniform(0.1, 2.0, (channels, states)).astype(np.float32)
    b = rng.standard_normal((rows, states)).astype(np.float32)
    cc = rng.standard_normal((rows, states)).astype(np.float32)
    h0 = rng.standard_normal((channels, states)).astype(np.float32)
    c.inputs.update(x=x, dt=dt, a=a, b=b, c=cc, h=h0)
    h = h0.astype(np.float64)
    n = rows if length is None else min(max(length, 0), rows)
    y, kept = [], h.copy()
    for t in range(rows):
        h = np.exp(dt[t][:, None] * a) * h + b[t][None, :] * (x[t] * dt[t])[:, None]
        y.append(h @ cc[t])
        if t + 1 == n:
            kept = h.copy()
    c.expected["y"] = np.stack(y).astype(np.float32)
    c.expected["new_state"] = kept.astype(np.float32)
    lt, at, bt = mlir_type((rows, channels)), mlir_type((channels, states)), mlir_type((rows, states))
    extra, use = "", ""
    if length is not None:
        c.inputs["n"] = np.array([length], dtype=np.int64)
        extra = ', %n: tensor<1xi64> {kiln.name = "n"}'
        use = " length(%n : tensor<1xi64>)"
    c.ir = f'''func.func @main(%x: {lt} {{kiln.name = "x"}}, %dt: {lt} {{kiln.name = "dt"}}, %a: {at} {{kiln.name = "a"}}, %b: {bt} {{kiln.name = "b"}}, %c: {bt} {{kiln.name = "c"}}, %h: {at} {{kiln.name = "h"}}{extra}) -> ({lt} {{kiln.name = "y"}}, {at} {{kiln.name = "new_state"}}) {{
  %y, %nh = kiln.selective_scan %x, %dt, %a, %b, %c, %h{use} : {lt}, {lt}, {at}, {bt}, {bt}, {at}
  return %y, %nh : {lt}, {at}
}}'''
    return c


def wkv_case(work, rows, length):
    """kiln.wkv (RWKV-6) from its definition (float64 reference), the state after
    `length` rows (None: all); head size 12, off the vector width."""
    c = Case(f"wkv_l{rows}_len{length}", work)
    heads, size = 3, 12
    r, k, v = (rng.standard_normal((rows, heads, size)).astype(np.float32) for _ in range(3))
    w = rng.uniform(0.5, 1.0, (rows, heads, size)).astype(np.float32)
    u = rng.standard_normal((heads, size)).astype(np.float32)
    s0 = rng.standard_normal((heads, size, size)).astype(np.float32)
    c.inputs.update(r=r, k=k, v=v, w=w, u=u, s=s0)
    state = s0.astype(np.float64)
    n = rows if length is None else min(max(length, 0), rows)
    y, kept = [], state.copy()
    for t in range(rows):
        kv = k[t][:, :, None].astype(np.float64) * v[t][:, None, :]
        y.append(np.einsum("hi,hij->hj", r[t], u[:, :, None] * kv + state))
        state = state * w[t][:, :, None] + kv
        if t + 1 == n:
            kept = state.copy()
    c.expected["y"] = np.stack(y).astype(np.float32)
    c.expected["new_state"] = kept.astype(np.float32)
    lt, ut, st = mlir_type((rows, heads, size)), mlir_type((heads, size)), mlir_type((heads, size, size))
    extra, use = "", ""
    if length is not None:
        c.inputs["n"] = np.array([length], dtype=np.int64)
        extra = ', %n: tensor<1xi64> {kiln.name = "n"}'
        use = " length(%n : tensor<1xi64>)"
    c.ir = f'''func.func @main(%r: {lt} {{kiln.name = "r"}}, %k: {lt} {{kiln.name = "k"}}, %v: {lt} {{kiln.name = "v"}}, %w: {lt} {{kiln.name = "w"}}, %u: {ut} {{kiln.name = "u"}}, %s: {st} {{kiln.name = "s"}}{extra}) -> ({lt} {{kiln.name = "y"}}, {st} {{kiln.name = "new_state"}}) {{
  %y, %ns = kiln.wkv %r, %k, %v, %w, %u, %s{use} : {lt}, {lt}, {lt}, {lt}, {ut}, {st}
  return %y, %ns : {lt}, {st}
}}'''
    return c


def wkv7_case(work, rows, length, size=12):
    """kiln.wkv7 (RWKV-7) from its definition (float64 reference), the state after
    `length` rows (None: all); head size 12 (off the vector width) unless given."""
    c = Case(f"wkv7_l{rows}_len{length}_s{size}", work)
    heads = 3
    r, k, v = (rng.standard_normal((rows, heads, size)).astype(np.float32) for _ in range(3))
    a, b = (rng.standard_normal((rows, heads, size)).astype(np.float32) * 0.3 for _ in range(2))
    w = rng.uniform(0.5, 1.0, (rows, heads, size)).astype(np.float32)
    s0 = rng.standard_normal((heads, size, size)).astype(np.float32)
    c.inputs.update(r=r, w=w, k=k, v=v, a=a, b=b, s=s0)
    state = s0.astype(np.float64)
    n = rows if length is None else min(max(length, 0), rows)
    y, kept = [], state.copy()
    for t in range(rows):
        sa = np.einsum("hj,hij->hi", a[t], state)
        state = (state * w[t][:, None, :] + v[t][:, :, None] * k[t][:, None, :]
                 + sa[:, :, None] * b[t][:, None, :])
        y.append(np.einsum("hij,hj->hi", state, r[t]))
        if t + 1 == n:
            kept = state.copy()
    c.expected["y"] = np.stack(y).astype(np.float32)
    c.expected["new_state"] = kept.astype(np.float32)
    lt, st = mlir_type((rows, heads, size)), mlir_type((heads, size, size))
    extra, use = "", ""
    if length is not None:
        c.inputs["n"] = np.array([length], dtype=np.int64)
        extra = ', %n: tensor<1xi64> {kiln.name = "n"}'
        use = " length(%n : tensor<1xi64>)"
    args = ", ".join(f'%{x}: {lt} {{kiln.name = "{x}"}}' for x in "rwkvab")
    c.ir = f'''func.func @main({args}, %s: {st} {{kiln.name = "s"}}{extra}) -> ({lt} {{kiln.name = "y"}}, {st} {{kiln.name = "new_state"}}) {{
  %y, %ns = kiln.wkv7 %r, %w, %k, %v, %a, %b, %s{use} : {lt}, {st}
  return %y, %ns : {lt}, {st}
}}'''
    return c


# Each value is a short f32 computation (a dot product of <= 64 terms, a softmax over 7
# keys, a block scale times a small integer) compared with float64 references, so f32
# rounding stays near 1e-6 relative. Cases with long sums set their own bound.
RTOL, ATOL = 1e-5, 1e-5


def run(case, bin_dir):
    with open(case.weights_path, "wb") as f:
        f.write(case.weights)
    mlir = os.path.join(case.work, case.name + ".mlir")
    with open(mlir, "w") as f:
        f.write(case.ir + "\n")
    artifact = os.path.join(case.work, case.name + ".kiln")
    compiled = subprocess.run([os.path.join(bin_dir, "kiln-compile"), mlir, "-o", artifact,
                               *case.compile_args],
                              capture_output=True, text=True)
    if compiled.returncode != 0:
        print(f"FAIL {case.name}: kiln-compile failed:\n{compiled.stderr}")
        return False
    args = [os.path.join(bin_dir, "kiln-run"), artifact, "--quiet", "--rtol", str(case.rtol),
            "--atol", str(case.atol)]
    for key, data in case.inputs.items():
        path = os.path.join(case.work, f"{case.name}.{key}.npy")
        np.save(path, data)
        args += ["--input", f"{key}={path}"]
    for key, data in case.expected.items():
        path = os.path.join(case.work, f"{case.name}.{key}.expected.npy")
        np.save(path, data)
        args += ["--compare", f"{key}={path}"]
    ran = subprocess.run(args, capture_output=True, text=True)
    if ran.returncode != 0:
        print(f"FAIL {case.name} (rtol {case.rtol}, atol {case.atol:.3g}):\n{ran.stdout}{ran.stderr}")
        return False
    print(f"PASS {case.name}")
    return True


def main():
    bin_dir, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    cases = [dequantize_case(work, s, q, 4, 512) for s, q in
             (("q8_0", GT.Q8_0), ("q4_0", GT.Q4_0), ("q4_1", GT.Q4_1), ("q5_0", GT.Q5_0), ("q5_1", GT.Q5_1),
              ("q4_k", GT.Q4_K), ("q6_k", GT.Q6_K))]
    cases += [every_half_scale_case(work)]
    cases += [grouped_case(work, "int8", 3, 128, 32, False), grouped_case(work, "int8", 3, 128, 32, True),
              grouped_case(work, "int4", 3, 128, 64, False), grouped_case(work, "int4", 3, 128, 64, True)]
    cases += [gather_case(work, "q8_0", GT.Q8_0), gather_case(work, "q5_0", GT.Q5_0),
              gather_case(work, "q4_1", GT.Q4_1),
              gather_case(work, "q6_k", GT.Q6_K)]
    cases += [gather_case(work, s, q, 48) for s, q in
              (("q8_0", GT.Q8_0), ("q4_0", GT.Q4_0), ("q5_0", GT.Q5_0), ("q4_k", GT.Q4_K),
               ("q6_k", GT.Q6_K))]
    cases += [matmul_case(work, s, q, 11) for s, q in
              (("q8_0", GT.Q8_0), ("q4_0", GT.Q4_0), ("q4_1", GT.Q4_1), ("q5_0", GT.Q5_0), ("q5_1", GT.Q5_1),
               ("q4_k", GT.Q4_K), ("q6_k", GT.Q6_K))]
    # (64 weight rows: Q4_0, Q8_0, Q5_0, Q4_K and Q6_K products run on the interleaved
    # q4_0x16 / q8_0x16 / q5_0x16 / q4_kx16 / q6_kx16.)
    cases += [matmul_case(work, "q4_0", GT.Q4_0, 1), matmul_case(work, "q8_0", GT.Q8_0, 1),
              matmul_case(work, "q4_1", GT.Q4_1, 1),
              matmul_case(work, "q5_0", GT.Q5_0, 1),
              matmul_case(work, "q4_k", GT.Q4_K, 1), matmul_case(work, "q6_k", GT.Q6_K, 1),
              grouped_matmul_case(work, 9),
              grouped_matmul_case(work, 1)]
    cases += [float_matvec_case(work, 640), float_matvec_case(work, 1000)]
    cases += [half_matvec_case(work, e, columns, depth)
              for e in ("f16", "bf16") for columns, depth in ((640, 1024), (48, 560))]
    cases += [half_matvec_case(work, "f16", 48, 1024, subnormal=True)]
    # The row scaled by 2^e before the f16 weights meet it (e = 112 up to |x| < 2^14,
    # smaller above so that it cannot overflow): activations of 1e6 and 1e-30, the
    # subnormal weights among them.
    cases += [half_matvec_case(work, "f16", 48, 1024, x_scale=1e6),
              half_matvec_case(work, "f16", 48, 1024, x_scale=1e-30),
              half_matvec_case(work, "f16", 48, 1024, subnormal=True, x_scale=3e4)]
    # Rows longer than 4096 values: 4 columns per pass, chunks that do not divide the
    # columns (200 = 12 chunks of 16 and one of 8; 36 = 4 of 8 and one of 4), and a
    # depth that is not a multiple of 64 (16 lanes per column).
    cases += [half_matvec_case(work, "f16", 200, 5120), half_matvec_case(work, "bf16", 64, 8192),
              half_matvec_case(work, "f16", 36, 4112)]
    cases += [int8_matvec_case(work, s, q, False) for s, q in
              (("q8_0", GT.Q8_0), ("q4_0", GT.Q4_0), ("q5_0", GT.Q5_0), ("q4_k", GT.Q4_K),
               ("q6_k", GT.Q6_K))]
    cases += [int8_matvec_case(work, "q5_0", GT.Q5_0, True)]
    # Gemma 3 270M's shapes on the interleaved layouts: every column chunk and group of
    # 16 rows, depths of 20 and 64 blocks.
    cases += [int8_matvec_case(work, s, q, False, rows, depth)
              for s, q in (("q5_0", GT.Q5_0), ("q4_0", GT.Q4_0), ("q8_0", GT.Q8_0))
              for rows, depth in ((256, 640), (2048, 640), (640, 2048))]
    # q4_kx16: Gemma's FFN-down shape and a TinyLlama-like one (blocks of 256 over
    # several chunks of columns).
    cases += [int8_matvec_case(work, s, q, False, rows, depth)
              for s, q in (("q4_k", GT.Q4_K), ("q6_k", GT.Q6_K))
              for rows, depth in ((640, 2048), (256, 1536))]
    cases += [tanh_case(work), rms_norm_case(work), rope_case(work, False, 16), rope_case(work, True, 16),
              rope_case(work, True, 8)]
    cases += [attention_case(work, "causal"), attention_case(work, "shared"),
              attention_case(work, "shared", (2,)), attention_case(work, "per_entry", (3,)),
              attention_case(work, "per_entry", (2, 2))]
    # Decode (one query) and prefill (5) at the first row, mid-cache and the last rows;
    # sliding windows that start inside and before the cache.
    cases += [offset_attention_case(work, seq, offset, window)
              for seq, offset, window in ((1, 0, 0), (1, 9, 0), (1, 23, 0), (5, 0, 0), (5, 12, 0),
                                          (5, 19, 0), (1, 3, 8), (1, 17, 8), (5, 10, 4), (5, 19, 8))]
    cases += [cache_write_case(work, count, offset)
              for count, offset in ((1, 0), (1, 11), (4, 3), (4, 10), (4, -1), (4, 12))]
    # Ring caches: the first pass, one that wraps, decode steps past several laps.
    cases += [offset_attention_case(work, seq, offset, window, spare)
              for seq, offset, window, spare in ((5, 0, 4, 0), (5, 6, 4, 0), (5, 17, 8, 0),
                                                 (1, 9, 4, 0), (1, 39, 8, 3), (5, 35, 6, 2))]
    cases += [cache_write_case(work, count, offset, ring=True)
              for count, offset in ((1, 0), (4, 0), (4, 4), (1, 17), (4, 33), (4, -1), (4, -3))]
    cases += [causal_conv1d_case(work, rows, length)
              for rows, length in ((1, None), (7, None), (7, 0), (7, 2), (7, 5), (7, 9), (1, 1))]
    cases += [selective_scan_case(work, rows, states, length)
              for rows, states, length in ((1, 16, None), (7, 16, None), (7, 5, 3), (7, 16, 0),
                                           (1, 16, 1), (7, 16, 12))]
    cases += [wkv_case(work, rows, length) for rows, length in ((1, None), (6, None), (6, 2), (6, 0))]
    cases += [wkv7_case(work, rows, length) for rows, length in ((1, None), (6, None), (6, 2), (6, 0))]
    cases += [wkv7_case(work, 6, None, size) for size in (16, 32)]
    # An optional third argument runs only the cases whose names contain it.
    if len(sys.argv) > 3:
        cases = [case for case in cases if sys.argv[3] in case.name]
    results = [run(case, bin_dir) for case in cases]
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
