"""End-to-end numerics of the GGUF decoder importer: tiny random-weight llama and
gemma3 models written here with the `gguf` package (F32, F16, BF16, Q8_0, Q4_0 through
gguf.quants.quantize; Q4_K and Q6_K as random valid blocks), compiled by kiln-compile
straight from the .gguf, run by kiln-run, and compared with two references on the
weights as the `gguf` package dequantizes them:
- llama.cpp (llama-cpp-python) on an F32 copy of each GGUF file (gguf_f32_copy.py):
  an implementation independent of kiln's reading of the architectures, in f32;
- a numpy forward pass in f64 written from the architectures' definitions (llama.cpp's
  llm_build_llama and llm_build_gemma3), which also covers the Hugging Face directories
  llama.cpp does not read.
Configs with `kv_batch` are also compiled with a KV cache and run as prefill batches +
single-token decodes, whose logits must match the numpy reference at every position.

usage: llama_vs_numpy.py BIN_DIR WORK_DIR LIBKILN_RUNTIME [CONFIG_NAME_SUBSTRING]
"""
import json
import os
import subprocess
import sys

import gguf
import numpy as np
from gguf import GGMLQuantizationType as GT
from gguf import quants

import ggml_blocks
import kiln_session
from gguf_f32_copy import f32_copy
from safetensors_files import write_safetensors

rng = np.random.default_rng(20261124)

# Both sides compute in f32 (the reference in f64); the differences are summation order
# in dot products of up to 512 terms, softmax and rms_norm, a few ulps per term, carried
# through two blocks whose residual stream is O(1). That is ~1e-6 relative per value;
# 1e-4 of the largest logit (plus 1e-4 relative) leaves room without hiding a wrong
# graph, where errors are O(1).
RTOL = 1e-4
# llama.cpp computes in f32 too, but rounds GELU's input to f16 (ggml's lookup table):
# about 5e-4 relative on each activation of gemma's feed-forward (seen: 3.5e-5 of the
# largest logit at the end); SiLU (llama) is computed in f32.
LLAMA_CPP_RTOL = {"llama": 1e-4, "gemma3": 5e-4}


class Config:
    def __init__(self, name, vocab, dim, heads, kv_heads, ffn, blocks, context,
                 seq_len=None, types=None, tied=False, freq_base=10000.0, rope_linear=None,
                 arch="llama", head_dim=None, window=None, kv_batch=None, hf=None, eps=1e-5):
        self.name, self.vocab, self.dim, self.heads, self.kv_heads = name, vocab, dim, heads, kv_heads
        self.ffn, self.blocks, self.context, self.seq_len = ffn, blocks, context, seq_len
        self.arch, self.window, self.kv_batch, self.eps = arch, window, kv_batch, eps
        # hf: a Hugging Face LlamaForCausalLM directory (config.json + safetensors) in
        # this many shards instead of a GGUF file.
        self.hf = hf
        self.head_dim = head_dim or dim // heads
        # Tensor kind ("embd", "attn", "attn_output", "ffn", "ffn_down", "output") -> type.
        self.types = types or {}
        self.tied, self.freq_base, self.rope_linear = tied, freq_base, rope_linear

    def type_of(self, kind):
        return self.types.get(kind, GT.F32)

    @property
    def tokens(self):
        return self.seq_len if self.seq_len else min(self.context, 64)

    @property
    def gemma(self):
        return self.arch == "gemma3"

    def layer(self, i):
        """(sliding window or None, rope base, rope frequency scale) of block i: gemma3
        makes every sixth block global, the others sliding-window with base 10000."""
        scale = 1.0 / self.rope_linear if self.rope_linear else 1.0
        if self.gemma and self.window and (i + 1) % 6 != 0:
            return self.window, 10000.0, 1.0
        return None, self.freq_base, scale


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
        self.writer = gguf.GGUFWriter(path, config.arch)

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

    def norm(self, name, size=None):
        w = (1.0 + 0.1 * rng.standard_normal(size or self.c.dim)).astype(np.float32)
        self.writer.add_tensor(name, w)
        self.weights[name] = w.astype(np.float64)

    def write(self):
        c, w = self.c, self.writer
        # No tokenizer (llama.cpp's "none" vocabulary): the tests feed token ids. Unless
        # the caller added one (generate_vs_numpy.py: the real LLaMA vocabulary).
        if not any("tokenizer.ggml.model" in kv for kv in w.kv_data):
            w.add_tokenizer_model("none")
        w.add_vocab_size(c.vocab)
        w.add_context_length(c.context)
        w.add_embedding_length(c.dim)
        w.add_block_count(c.blocks)
        w.add_feed_forward_length(c.ffn)
        w.add_head_count(c.heads)
        w.add_head_count_kv(c.kv_heads)
        w.add_rope_freq_base(c.freq_base)
        w.add_rope_dimension_count(c.head_dim)
        w.add_layer_norm_rms_eps(c.eps)
        if c.head_dim != c.dim // c.heads:
            w.add_key_length(c.head_dim)
            w.add_value_length(c.head_dim)
        if c.window:
            w.add_sliding_window(c.window)
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
            if c.gemma:
                self.norm(p + "attn_q_norm.weight", hd)
                self.norm(p + "attn_k_norm.weight", hd)
                self.norm(p + "post_attention_norm.weight")
                self.norm(p + "post_ffw_norm.weight")
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


HF_NAMES = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
            "output.weight": "lm_head.weight"}
HF_BLOCK = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
            "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
            "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj",
            "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def hf_name(name):
    if name in HF_NAMES:
        return HF_NAMES[name]
    _, index, part, _ = name.split(".")
    return f"model.layers.{index}.{HF_BLOCK[part]}.weight"


def train_byte_level_bpe(text, vocab_size):
    """A byte-level BPE tokenizer with <s> and </s>, trained on `text` (a list of
    strings) with Hugging Face tokenizers: the tokenizer.json of the HfModel tests."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(text, trainer)
    return tokenizer


class HfModel:
    """A Hugging Face LlamaForCausalLM directory with random weights (F32, F16 or BF16
    storage), kept under their GGUF names for the reference."""

    def __init__(self, config, path):
        self.c, self.path, self.weights, self.stored = config, path, {}, {}

    def tensor(self, name, rows, cols, scale):
        values = (rng.standard_normal((rows, cols) if cols else rows) * scale).astype(np.float32)
        self.add(name, values)

    def add(self, name, values):
        kind = self.c.type_of("all")
        if kind == GT.F16:
            stored = values.astype(np.float16)
            self.stored[hf_name(name)] = ("F16", stored)
            values = stored.astype(np.float32)
        elif kind == GT.BF16:
            bits = (values.view(np.uint32) >> 16).astype(np.uint16)
            self.stored[hf_name(name)] = ("BF16", bits)
            values = (bits.astype(np.uint32) << 16).view(np.float32)
        else:
            self.stored[hf_name(name)] = ("F32", values)
        self.weights[name] = values.astype(np.float64)

    def write(self):
        c, d, hd = self.c, self.c.dim, self.c.head_dim
        os.makedirs(self.path, exist_ok=True)
        self.tensor("token_embd.weight", c.vocab, d, 1.0)
        for i in range(c.blocks):
            p = f"blk.{i}."
            self.add(p + "attn_norm.weight", (1.0 + 0.1 * rng.standard_normal(d)).astype(np.float32))
            self.tensor(p + "attn_q.weight", c.heads * hd, d, d ** -0.5)
            self.tensor(p + "attn_k.weight", c.kv_heads * hd, d, d ** -0.5)
            self.tensor(p + "attn_v.weight", c.kv_heads * hd, d, d ** -0.5)
            self.tensor(p + "attn_output.weight", d, c.heads * hd, d ** -0.5)
            self.add(p + "ffn_norm.weight", (1.0 + 0.1 * rng.standard_normal(d)).astype(np.float32))
            self.tensor(p + "ffn_gate.weight", c.ffn, d, d ** -0.5)
            self.tensor(p + "ffn_up.weight", c.ffn, d, d ** -0.5)
            self.tensor(p + "ffn_down.weight", d, c.ffn, c.ffn ** -0.5)
        self.add("output_norm.weight", (1.0 + 0.1 * rng.standard_normal(d)).astype(np.float32))
        if not c.tied:
            self.tensor("output.weight", c.vocab, d, d ** -0.5)
        config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                  "hidden_size": d, "intermediate_size": c.ffn, "num_hidden_layers": c.blocks,
                  "num_attention_heads": c.heads, "num_key_value_heads": c.kv_heads,
                  "max_position_embeddings": c.context, "vocab_size": c.vocab,
                  "rms_norm_eps": c.eps, "rope_theta": c.freq_base, "hidden_act": "silu",
                  "tie_word_embeddings": c.tied,
                  "rope_scaling": {"rope_type": "linear", "factor": c.rope_linear} if c.rope_linear else None}
        if hd != d // c.heads:
            config["head_dim"] = hd
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(config, f, indent=1)
        names = list(self.stored)
        if c.hf == 1:
            write_safetensors(os.path.join(self.path, "model.safetensors"), self.stored)
            return
        weight_map = {}
        for shard in range(c.hf):
            file = f"model-{shard + 1:05d}-of-{c.hf:05d}.safetensors"
            part = names[shard::c.hf]
            write_safetensors(os.path.join(self.path, file), {n: self.stored[n] for n in part})
            weight_map.update({n: file for n in part})
        with open(os.path.join(self.path, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f)


def rms_norm(x, w, eps=1e-5):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, positions, theta, freq_scale, neox=False):
    """RoPE: pair i of the head turns by pos * freq_scale * theta^(-2i/d). GGUF llama
    ("normal") pairs adjacent elements (2i, 2i+1); gemma (NeoX) pairs i with i + d/2."""
    d = x.shape[-1]
    inv = theta ** (-np.arange(0, d, 2) / d)
    angle = positions[:, None] * freq_scale * inv[None, :]
    cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
    if neox:
        a, b = x[..., :d // 2], x[..., d // 2:]
        return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def forward(c, W, tokens, positions):
    n, hd = len(tokens), c.head_dim
    x = W["token_embd.weight"][tokens]
    if c.gemma:
        x = x * np.sqrt(np.float32(c.dim))
    for i in range(c.blocks):
        p = f"blk.{i}."
        window, theta, freq_scale = c.layer(i)
        hidden = np.triu(np.ones((n, n), bool), 1)
        if window:
            hidden |= (positions[:, None] - positions[None, :]) >= window
        h = rms_norm(x, W[p + "attn_norm.weight"], c.eps)
        q = (h @ W[p + "attn_q.weight"].T).reshape(n, c.heads, hd)
        k = (h @ W[p + "attn_k.weight"].T).reshape(n, c.kv_heads, hd)
        v = (h @ W[p + "attn_v.weight"].T).reshape(n, c.kv_heads, hd)
        if c.gemma:
            q = rms_norm(q, W[p + "attn_q_norm.weight"], c.eps)
            k = rms_norm(k, W[p + "attn_k_norm.weight"], c.eps)
        q = rope(q, positions, theta, freq_scale, neox=c.gemma or bool(c.hf))
        k = rope(k, positions, theta, freq_scale, neox=c.gemma or bool(c.hf))
        group = c.heads // c.kv_heads
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        scores = np.einsum("shd,thd->hst", q, k) / np.sqrt(hd)
        scores = np.where(hidden[None], -np.inf, scores)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        a = np.einsum("hst,thd->shd", probs, v).reshape(n, c.heads * hd) @ W[p + "attn_output.weight"].T
        if c.gemma:
            a = rms_norm(a, W[p + "post_attention_norm.weight"], c.eps)
        x = x + a
        h = rms_norm(x, W[p + "ffn_norm.weight"], c.eps)
        g, u = h @ W[p + "ffn_gate.weight"].T, h @ W[p + "ffn_up.weight"].T
        act = gelu_tanh(g) if c.gemma else g / (1 + np.exp(-g))
        f = (act * u) @ W[p + "ffn_down.weight"].T
        if c.gemma:
            f = rms_norm(f, W[p + "post_ffw_norm.weight"], c.eps)
        x = x + f
    out = W["token_embd.weight"] if c.tied else W["output.weight"]
    return rms_norm(x, W["output_norm.weight"], c.eps) @ out.T


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
    # Q4_1 (a zero point per block: what --quantize=int4:32:zp writes) in a GGUF file.
    Config("gqa_q4_1", vocab=64, dim=64, heads=4, kv_heads=2, ffn=96, blocks=1, context=16, seq_len=8,
           types={"attn": GT.Q4_1, "attn_output": GT.Q4_1, "ffn": GT.Q4_1, "ffn_down": GT.Q4_1}),
    Config("gqa_q4_k_q6_k", vocab=50, dim=256, heads=4, kv_heads=2, ffn=512, blocks=2, context=24,
           types={"embd": GT.Q6_K, "attn": GT.Q4_K, "attn_output": GT.Q6_K, "ffn": GT.Q4_K,
                  "ffn_down": GT.Q6_K, "output": GT.Q4_K}),
    Config("tied_q8_0", vocab=48, dim=64, heads=2, kv_heads=1, ffn=96, blocks=1, context=8, tied=True,
           types={"embd": GT.Q8_0}, kv_batch=3),
    # gemma3: head size != dim / heads, q/k norms, post norms, GELU, embedding scale,
    # five sliding-window blocks (window 5 < 14 tokens) then a global one.
    Config("gemma3_f32_window", arch="gemma3", vocab=90, dim=64, heads=2, kv_heads=1, head_dim=48,
           ffn=80, blocks=6, context=32, seq_len=14, tied=True, freq_base=1000000.0, window=5,
           kv_batch=4),
    # Hugging Face LlamaForCausalLM directories: NeoX RoPE on unpermuted q/k, one file or
    # sharded with an index.
    Config("hf_llama_f32", hf=1, vocab=97, dim=64, heads=4, kv_heads=2, ffn=96, blocks=2, context=32,
           seq_len=12, kv_batch=5),
    Config("hf_llama_bf16_sharded_tied", hf=3, vocab=80, dim=96, heads=6, kv_heads=2, ffn=128, blocks=2,
           context=16, tied=True, rope_linear=2.0, types={"all": GT.BF16}),
    Config("hf_llama_f16_head_dim", hf=1, vocab=64, dim=64, heads=4, kv_heads=1, head_dim=32, ffn=64,
           blocks=1, context=16, freq_base=500000.0, types={"all": GT.F16}),
    # Gemma 3 270M's mix: Q8_0 embedding, Q5_0 projections, Q4_K/Q6_K elsewhere.
    Config("gemma3_q5_0_q4_k", arch="gemma3", vocab=64, dim=256, heads=4, kv_heads=1, head_dim=64,
           ffn=256, blocks=2, context=16, seq_len=10, tied=True, window=4,
           types={"embd": GT.Q8_0, "attn": GT.Q5_0, "attn_output": GT.Q4_K, "ffn": GT.Q5_0,
                  "ffn_down": GT.Q6_K}),
]


def llama_cpp_logits(c, path, tokens):
    """llama.cpp's logits at every position, on an F32 copy of the GGUF file `path`."""
    from llama_cpp import Llama
    copy = path[:-len(".gguf")] + ".f32.gguf"
    if os.path.exists(copy):  # from an earlier run, perhaps of other weights
        os.remove(copy)
    f32_copy(path, copy)
    llm = Llama(model_path=copy, n_ctx=c.context, n_batch=c.context, logits_all=True,
                n_threads=2, type_k=0, type_v=0, verbose=False)
    llm.eval([int(t) for t in tokens])
    return np.array(llm.scores[:len(tokens)], np.float64)


def compare_with_llama_cpp(c, path, tokens, got):
    want = llama_cpp_logits(c, path, tokens)
    scale = np.abs(want).max()
    rtol = LLAMA_CPP_RTOL[c.arch]
    error = np.abs(got - want)
    ok = bool(np.all(error <= rtol * scale + rtol * np.abs(want)))
    ranked = np.sort(want, -1)
    decided = ranked[:, -1] - ranked[:, -2] > 4 * rtol * scale
    same = got.argmax(-1) == want.argmax(-1)
    ok = ok and bool(np.all(same[decided]))
    print(f"{'PASS' if ok else 'FAIL'} {c.name} vs llama.cpp on its F32 copy: max |error| "
          f"{error.max():.3g} = {error.max() / scale:.3g} of max |logit| {scale:.3g} (<= {rtol} "
          f"+ {rtol} relative); argmax identical at {int(same.sum())} of {len(same)} positions "
          f"({int(decided.sum())} decided: all must)")
    return ok


def run(c, bin_dir, work, library):
    path = os.path.join(work, c.name + ("" if c.hf else ".gguf"))
    model = (HfModel if c.hf else Model)(c, path)
    model.write()
    n = c.tokens
    tokens = rng.integers(0, c.vocab, n).astype(np.int32)
    positions = np.arange(n, dtype=np.int64)
    expected = forward(c, model.weights, tokens, positions.astype(np.float64))

    artifact = os.path.join(work, c.name + ".kiln")
    # f32 activations: the references compute in f64 from the same weights.
    args = [os.path.join(bin_dir, "kiln-compile"), path, "-o", artifact, "--activations=f32"]
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
    if not c.hf:
        ok = compare_with_llama_cpp(c, path, tokens, got) and ok
    if c.kv_batch:
        ok = run_kv_cache(c, bin_dir, work, path, tokens, expected, library) and ok
    return ok


def run_kv_cache(c, bin_dir, work, path, tokens, expected, library):
    """Prefill the first kv_batch tokens (and, where there are enough, the next
    kv_batch as a second prefill batch), then decode the rest one at a time over the
    persistent cache, through the C API (two sessions sharing state). With sliding
    windows the sliding blocks' caches are ring buffers of window + kv_batch - 1 rows;
    the same model compiled with --full-window-caches must give identical logits."""
    b = c.kv_batch
    prefilled = 2 * b if len(tokens) > 2 * b else b
    rows = [start + b - 1 for start in range(0, prefilled, b)] + list(range(prefilled, len(tokens)))

    def compile_and_run(suffix, extra):
        artifact = os.path.join(work, c.name + suffix + ".kv.kiln")
        compiled = subprocess.run([os.path.join(bin_dir, "kiln-compile"), path, "-o", artifact,
                                   "--activations=f32", "--kv-cache", "--ctx", str(c.tokens),
                                   "--seq-len", str(b)] + extra, capture_output=True, text=True)
        if compiled.returncode != 0:
            print(f"FAIL {c.name} KV cache{suffix}: kiln-compile failed:\n{compiled.stderr}")
            return None
        module = kiln_session.Runtime(library).load(artifact)
        prefill = module.session("prefill")
        decode = module.session("decode", sharing_state_with=prefill)
        logits, got = {0: (np.float32, (1, c.vocab))}, []
        for start in range(0, prefilled, b):
            got += prefill.run(logits, tokens=tokens[start:start + b],
                               positions=np.arange(start, start + b, dtype=np.int64),
                               logits_row=np.array([b - 1], np.int64))
        for p in range(prefilled, len(tokens)):
            got += decode.run(logits, tokens=tokens[p:p + 1], positions=np.array([p], np.int64))
        return np.concatenate(got).astype(np.float64)

    got = compile_and_run("", [])
    if got is None:
        return False
    want = expected[rows]
    scale = np.abs(want).max()
    error = np.abs(got - want)
    ok = bool(np.all(error <= RTOL * scale + RTOL * np.abs(want)))
    print(f"{'PASS' if ok else 'FAIL'} {c.name} KV cache (prefill {prefilled} tokens in batches of "
          f"{b}, then {len(tokens) - prefilled} decodes): max |error| {error.max():.3g} = "
          f"{error.max() / scale:.3g} of max |logit| {scale:.3g}")
    if c.window:
        full = compile_and_run(".full", ["--full-window-caches"])
        same = full is not None and np.array_equal(full, got)
        print(f"{'PASS' if same else 'FAIL'} {c.name}: ring caches of {c.window} + {b} - 1 rows "
              f"and --full-window-caches ({c.tokens} rows) give "
              + ("identical logits" if same else "different logits" if full is not None
                 else "no logits"))
        ok = ok and same
    return ok


def main():
    bin_dir, work, library = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(work, exist_ok=True)
    only = sys.argv[4] if len(sys.argv) > 4 else ""
    results = [run(c, bin_dir, work, library) for c in CONFIGS if only in c.name]
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed (tolerance: {RTOL} of the largest "
          f"logit + {RTOL} relative)")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
