"""End-to-end numerics of the GGUF llama importer: tiny random-weight llama models
written here with the `gguf` package (F32, F16, BF16, Q8_0, Q4_0 through
gguf.quants.quantize; Q4_K and Q6_K as random valid blocks), compiled by kiln-compile
straight from the .gguf, run by kiln-run, and compared with a numpy forward pass written
from the llama definition (llama.cpp's llm_build_llama) on the weights as the `gguf`
package dequantizes them.

usage: llama_vs_numpy.py BIN_DIR WORK_DIR
"""
import os
import subprocess
import sys

import gguf
import numpy as np
from gguf import GGMLQuantizationType as GT
from gguf import quants

import ggml_blocks

rng = np.random.default_rng(20261124)

# Both sides compute in f32 (the reference in f64); the differences are summation order
# in dot products of up to 512 terms, softmax and rms_norm, a few ulps per term, carried
# through two blocks whose residual stream is O(1). That is ~1e-6 relative per value;
# 1e-4 of the largest logit (plus 1e-4 relative) leaves room without hiding a wrong
# graph, where errors are O(1).
RTOL = 1e-4


class Config:
    def __init__(self, name, vocab, dim, heads, kv_heads, ffn, blocks, context,
                 seq_len=None, types=None, tied=False, freq_base=10000.0, rope_linear=None):
        self.name, self.vocab, self.dim, self.heads, self.kv_heads = name, vocab, dim, heads, kv_heads
        self.ffn, self.blocks, self.context, self.seq_len = ffn, blocks, context, seq_len
        self.head_dim = dim // heads
        # Tensor kind ("embd", "attn", "attn_output", "ffn", "ffn_down", "output") -> type.
        self.types = types or {}
        self.tied, self.freq_base, self.rope_linear = tied, freq_base, rope_linear

    def type_of(self, kind):
        return self.types.get(kind, GT.F32)

    @property
    def tokens(self):
        return self.seq_len if self.seq_len else min(self.context, 64)


# K-quant scale fields (byte offset -> range), scaled so weights stay O(1/sqrt(cols)):
# Q4_K d and dmin times 6-bit scales/mins and nibbles; Q6_K d times int8 scales and
# 6-bit values.
BLOCK_SCALES = {GT.Q4_K: {0: (1e-4, 4e-4), 2: (0.0, 4e-4)}, GT.Q6_K: {208: (1e-5, 3e-5)}}


def random_blocks(qtype, rows, cols):
    return ggml_blocks.random_blocks(rng, qtype, rows, cols, BLOCK_SCALES[qtype])


class Model:
    """Writes the GGUF file and keeps the weights as the reference sees them."""

    def __init__(self, config, path):
        self.c, self.path, self.weights = config, path, {}
        self.writer = gguf.GGUFWriter(path, "llama")

    def tensor(self, name, rows, cols, qtype, scale):
        if qtype in (GT.Q4_K, GT.Q6_K):
            packed = random_blocks(qtype, rows, cols)
            self.writer.add_tensor(name, packed, raw_dtype=qtype)
            self.weights[name] = quants.dequantize(packed, qtype).astype(np.float64)
            return
        values = (rng.standard_normal((rows, cols)) * scale).astype(np.float32)
        if qtype == GT.F32:
            stored = values
            self.writer.add_tensor(name, values)
        elif qtype == GT.F16:
            stored = values.astype(np.float16)
            self.writer.add_tensor(name, stored)
            stored = stored.astype(np.float32)
        else:
            packed = quants.quantize(values, qtype)
            self.writer.add_tensor(name, packed, raw_dtype=qtype)
            stored = quants.dequantize(packed, qtype)
        self.weights[name] = stored.astype(np.float64)

    def norm(self, name):
        w = (1.0 + 0.1 * rng.standard_normal(self.c.dim)).astype(np.float32)
        self.writer.add_tensor(name, w)
        self.weights[name] = w.astype(np.float64)

    def write(self):
        c, w = self.c, self.writer
        w.add_context_length(c.context)
        w.add_embedding_length(c.dim)
        w.add_block_count(c.blocks)
        w.add_feed_forward_length(c.ffn)
        w.add_head_count(c.heads)
        w.add_head_count_kv(c.kv_heads)
        w.add_rope_freq_base(c.freq_base)
        w.add_rope_dimension_count(c.head_dim)
        w.add_layer_norm_rms_eps(1e-5)
        if c.rope_linear:
            w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            w.add_rope_scaling_factor(c.rope_linear)
        d, hd = c.dim, c.head_dim
        self.tensor("token_embd.weight", c.vocab, d, c.type_of("embd"), 1.0)
        for i in range(c.blocks):
            p = f"blk.{i}."
            self.norm(p + "attn_norm.weight")
            self.tensor(p + "attn_q.weight", c.heads * hd, d, c.type_of("attn"), d ** -0.5)
            self.tensor(p + "attn_k.weight", c.kv_heads * hd, d, c.type_of("attn"), d ** -0.5)
            self.tensor(p + "attn_v.weight", c.kv_heads * hd, d, c.type_of("attn"), d ** -0.5)
            self.tensor(p + "attn_output.weight", d, c.heads * hd, c.type_of("attn_output"), d ** -0.5)
            self.norm(p + "ffn_norm.weight")
            self.tensor(p + "ffn_gate.weight", c.ffn, d, c.type_of("ffn"), d ** -0.5)
            self.tensor(p + "ffn_up.weight", c.ffn, d, c.type_of("ffn"), d ** -0.5)
            self.tensor(p + "ffn_down.weight", d, c.ffn, c.type_of("ffn_down"), c.ffn ** -0.5)
        self.norm("output_norm.weight")
        if not c.tied:
            self.tensor("output.weight", c.vocab, d, c.type_of("output"), d ** -0.5)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()


def rms_norm(x, w):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-5) * w


def rope(x, positions, theta, freq_scale):
    """GGUF llama's "normal" RoPE: adjacent pairs (2i, 2i+1) turn by pos * theta^(-2i/d)."""
    d = x.shape[-1]
    inv = theta ** (-np.arange(0, d, 2) / d)
    angle = positions[:, None] * freq_scale * inv[None, :]
    cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


def forward(c, W, tokens, positions):
    n, hd = len(tokens), c.head_dim
    x = W["token_embd.weight"][tokens]
    freq_scale = 1.0 / c.rope_linear if c.rope_linear else 1.0
    causal = np.triu(np.ones((n, n), bool), 1)
    for i in range(c.blocks):
        p = f"blk.{i}."
        h = rms_norm(x, W[p + "attn_norm.weight"])
        q = (h @ W[p + "attn_q.weight"].T).reshape(n, c.heads, hd)
        k = (h @ W[p + "attn_k.weight"].T).reshape(n, c.kv_heads, hd)
        v = (h @ W[p + "attn_v.weight"].T).reshape(n, c.kv_heads, hd)
        q, k = rope(q, positions, c.freq_base, freq_scale), rope(k, positions, c.freq_base, freq_scale)
        group = c.heads // c.kv_heads
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        scores = np.einsum("shd,thd->hst", q, k) / np.sqrt(hd)
        scores = np.where(causal[None], -np.inf, scores)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        a = np.einsum("hst,thd->shd", probs, v).reshape(n, c.heads * hd)
        x = x + a @ W[p + "attn_output.weight"].T
        h = rms_norm(x, W[p + "ffn_norm.weight"])
        g, u = h @ W[p + "ffn_gate.weight"].T, h @ W[p + "ffn_up.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ W[p + "ffn_down.weight"].T
    out = W["token_embd.weight"] if c.tied else W["output.weight"]
    return rms_norm(x, W["output_norm.weight"]) @ out.T


CONFIGS = [
    Config("mha_f32", vocab=97, dim=64, heads=4, kv_heads=4, ffn=96, blocks=2, context=32, seq_len=12),
    Config("gqa_f16_rope_linear", vocab=100, dim=128, heads=8, kv_heads=2, ffn=160, blocks=2,
           context=128, seq_len=20, freq_base=500000.0, rope_linear=2.0,
           types={k: GT.F16 for k in ("embd", "attn", "attn_output", "ffn", "ffn_down", "output")}),
    Config("tied_bf16", vocab=64, dim=96, heads=6, kv_heads=3, ffn=64, blocks=1, context=16, tied=True,
           types={k: GT.BF16 for k in ("embd", "attn", "attn_output", "ffn", "ffn_down")}),
    Config("mqa_q8_0_q4_0", vocab=97, dim=64, heads=4, kv_heads=1, ffn=96, blocks=2, context=40, seq_len=16,
           types={"embd": GT.Q8_0, "attn": GT.Q4_0, "attn_output": GT.Q8_0, "ffn": GT.Q8_0,
                  "ffn_down": GT.Q4_0, "output": GT.Q4_0}),
    Config("gqa_q4_k_q6_k", vocab=50, dim=256, heads=4, kv_heads=2, ffn=512, blocks=2, context=24,
           types={"embd": GT.Q6_K, "attn": GT.Q4_K, "attn_output": GT.Q6_K, "ffn": GT.Q4_K,
                  "ffn_down": GT.Q6_K, "output": GT.Q4_K}),
    Config("tied_q8_0", vocab=48, dim=64, heads=2, kv_heads=1, ffn=96, blocks=1, context=8, tied=True,
           types={"embd": GT.Q8_0}),
]


def run(c, bin_dir, work):
    path = os.path.join(work, c.name + ".gguf")
    model = Model(c, path)
    model.write()
    n = c.tokens
    tokens = rng.integers(0, c.vocab, n).astype(np.int32)
    positions = np.arange(n, dtype=np.int64)
    expected = forward(c, model.weights, tokens, positions.astype(np.float64))

    artifact = os.path.join(work, c.name + ".kiln")
    args = [os.path.join(bin_dir, "kiln-compile"), path, "-o", artifact]
    if c.seq_len:
        args += ["--seq-len", str(c.seq_len)]
    compiled = subprocess.run(args, capture_output=True, text=True)
    if compiled.returncode != 0:
        print(f"FAIL {c.name}: kiln-compile failed:\n{compiled.stderr}")
        return False
    inputs = {}
    for key, data in (("tokens", tokens), ("positions", positions)):
        inputs[key] = os.path.join(work, f"{c.name}.{key}.npy")
        np.save(inputs[key], data)
    out = os.path.join(work, c.name + ".logits.npy")
    ran = subprocess.run([os.path.join(bin_dir, "kiln-run"), artifact, "--quiet",
                          "--input", f"tokens={inputs['tokens']}",
                          "--input", f"positions={inputs['positions']}",
                          "--output", f"logits={out}"], capture_output=True, text=True)
    if ran.returncode != 0:
        print(f"FAIL {c.name}: kiln-run failed:\n{ran.stdout}{ran.stderr}")
        return False
    got = np.load(out).astype(np.float64)
    if got.shape != expected.shape:
        print(f"FAIL {c.name}: logits shape {got.shape}, expected {expected.shape}")
        return False
    scale = np.abs(expected).max()
    error = np.abs(got - expected)
    ok = bool(np.all(error <= RTOL * scale + RTOL * np.abs(expected)))
    same_argmax = bool(np.array_equal(got.argmax(-1), expected.argmax(-1)))
    types = sorted({t.name for t in c.types.values()}) or ["F32"]
    must_match_argmax = types == ["F32"]
    ok = ok and (same_argmax or not must_match_argmax)
    argmax = ("identical at every position" if same_argmax else
              f"differs at {int(np.sum(got.argmax(-1) != expected.argmax(-1)))} of {n} positions")
    print(f"{'PASS' if ok else 'FAIL'} {c.name} ({'/'.join(types)}, {n} tokens, vocab {c.vocab}): "
          f"max |error| {error.max():.3g} = {error.max() / scale:.3g} of max |logit| {scale:.3g}; "
          f"argmax {argmax}")
    return ok


def main():
    bin_dir, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    results = [run(c, bin_dir, work) for c in CONFIGS]
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed (tolerance: {RTOL} of the largest "
          f"logit + {RTOL} relative)")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
