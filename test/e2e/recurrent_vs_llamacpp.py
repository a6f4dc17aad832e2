"""End-to-end numerics of the GGUF recurrent-model importers against llama.cpp: tiny
random-weight Mamba (v1), Mamba-2 and RWKV-6 models written here with the `gguf` package (the
tensor names and `mamba.*` / `mamba2.*` / `rwkv6.*` metadata llama.cpp's loader reads; F32, F16 and
Q8_0 weights, tied and untied output), compiled by kiln-compile straight from the .gguf
and compared with llama.cpp
(llama-cpp-python) on an F32 copy of each file (gguf_f32_copy.py):
- the full-sequence pass (@main, zero state): logits at every position;
- the recurrent state through the C API: a prompt prefilled in one batch and in several
  (the last one padded: the state must advance by the prompt's rows only), then one
  decode per token, each step's logits against llama.cpp's at that position, and the
  several-batch run against the one-batch run;
- kiln-generate on a Mamba carrying the GPT-2 byte-level BPE vocabulary (the family of
  Mamba's GPT-NeoX tokenizer) and an RWKV-6 carrying a vocabulary in the world
  tokenizer's format: the prompt's ids equal llama.cpp's tokenization and the greedy
  tokens equal greedy decoding over llama.cpp's logits.

usage: recurrent_vs_llamacpp.py BIN_DIR WORK_DIR LIBKILN_RUNTIME VOCAB_GGUF
"""
import json
import os
import subprocess
import sys

import gguf
import numpy as np
from gguf import GGMLQuantizationType as GT
from gguf import quants

import kiln_session
from gguf_f32_copy import f32_copy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tokenizers"))
import rwkv_vs_llamacpp as rwkv_world  # noqa: E402  (the world-format vocabulary writer)

rng = np.random.default_rng(20261205)

# Both sides compute in f32 with different summation orders (and llama.cpp's exp and
# SiLU through its own vector code); the scan multiplies those ulps through at most
# 24 steps of a decaying recurrence. Seen: ~1e-6 of the largest logit. The bar is the
# issue's: 1e-3 of the largest logit, with the argmax equal wherever llama.cpp's top two
# differ by more than 4x that.
TOL = 1e-3
# One batch against several: the same kernels on the same rows, only the batch
# boundaries differ (and with them which kernel computes a row).
BATCH_TOL = 1e-5


class Config:
    """A Mamba (inner, state, conv, rank), a Mamba-2 (arch="mamba2": inner, state, conv,
    rank = the head count) or an RWKV-6 (arch="rwkv6": head, ffn, mix_rank, decay_rank,
    rescale) model."""

    def __init__(self, name, vocab=97, dim=64, inner=128, state=16, conv=4, rank=4, blocks=2,
                 tokens=24, prompt=17, types=None, tied=False, eps=1e-5, arch="mamba",
                 head=16, ffn=96, mix_rank=8, decay_rank=16, rescale=0, logit_scale=1.0):
        self.arch, self.head, self.ffn, self.mix_rank = arch, head, ffn, mix_rank
        self.decay_rank, self.rescale = decay_rank, rescale
        # Multiplies the output projection: a wide spread of logits makes greedy choices
        # decided (top-2 margins above the tolerance) over a large vocabulary.
        self.logit_scale = logit_scale
        self.name, self.vocab, self.dim, self.inner, self.state = name, vocab, dim, inner, state
        self.conv, self.rank, self.blocks, self.tokens, self.prompt = conv, rank, blocks, tokens, prompt
        self.types, self.tied, self.eps = types or {}, tied, eps

    def type_of(self, kind):
        return self.types.get(kind, GT.F32)


def tensor(writer, name, values, qtype=GT.F32):
    values = values.astype(np.float32)
    if qtype == GT.F32:
        writer.add_tensor(name, values)
    elif qtype == GT.F16:
        writer.add_tensor(name, values.astype(np.float16))
    else:
        writer.add_tensor(name, quants.quantize(values, qtype), raw_dtype=qtype)


def copy_tokenizer(writer, vocab_path):
    """Every tokenizer.ggml.* key of a vocab-only GGUF, as it is stored there."""
    reader = gguf.GGUFReader(vocab_path)
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer.ggml."):
            continue
        if field.types[0] == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(key, field.contents(), field.types[0], sub_type=field.types[-1])
        else:
            writer.add_key_value(key, field.contents(), field.types[0])


def write_rwkv6(c, path, vocab_path=None):
    """A random RWKV-6 with weights of the scale a trained one has: decays
    exp(-exp(decay)) in (0.37, 0.99), lerp amounts in [0, 1]."""
    w = gguf.GGUFWriter(path, "rwkv6")
    if vocab_path:
        copy_tokenizer(w, vocab_path)
    else:
        w.add_tokenizer_model("none")  # the tests feed token ids
    w.add_vocab_size(c.vocab)
    w.add_context_length(1 << 20)
    w.add_embedding_length(c.dim)
    w.add_block_count(c.blocks)
    w.add_feed_forward_length(c.ffn)
    w.add_head_count(0)
    w.add_wkv_head_size(c.head)
    w.add_time_mix_extra_dim(c.mix_rank)
    w.add_time_decay_extra_dim(c.decay_rank)
    w.add_rescale_every_n_layers(c.rescale)
    w.add_token_shift_count(2)
    w.add_layer_norm_eps(c.eps)
    d, f, normal = c.dim, c.ffn, rng.standard_normal

    def norm(name):
        tensor(w, name + ".weight", 1 + 0.1 * normal(d))
        tensor(w, name + ".bias", 0.1 * normal(d))

    tensor(w, "token_embd.weight", normal((c.vocab, d)), c.type_of("embd"))
    norm("token_embd_norm")
    for i in range(c.blocks):
        p = f"blk.{i}."
        norm(p + "attn_norm")
        norm(p + "attn_norm_2")
        tensor(w, p + "time_mix_lerp_x.weight", rng.uniform(0, 1, (1, 1, d)))
        tensor(w, p + "time_mix_w1.weight", normal((5 * c.mix_rank, d)) * 0.1)
        tensor(w, p + "time_mix_w2.weight", normal((5, d, c.mix_rank)) * 0.1)
        tensor(w, p + "time_mix_lerp_fused.weight", rng.uniform(0, 1, (5, 1, 1, d)))
        tensor(w, p + "time_mix_first.weight", normal((d // c.head, c.head)) * 0.5)
        tensor(w, p + "time_mix_decay.weight", rng.uniform(-5, 0, d))
        tensor(w, p + "time_mix_decay_w1.weight", normal((c.decay_rank, d)) * 0.1)
        tensor(w, p + "time_mix_decay_w2.weight", normal((d, c.decay_rank)) * 0.1)
        for name in ("key", "value", "receptance", "gate", "output"):
            tensor(w, p + f"time_mix_{name}.weight", normal((d, d)) * d ** -0.5, c.type_of("proj"))
        norm(p + "time_mix_ln")
        tensor(w, p + "channel_mix_lerp_k.weight", rng.uniform(0, 1, (1, 1, d)))
        tensor(w, p + "channel_mix_lerp_r.weight", rng.uniform(0, 1, (1, 1, d)))
        tensor(w, p + "channel_mix_key.weight", normal((f, d)) * d ** -0.5, c.type_of("proj"))
        tensor(w, p + "channel_mix_value.weight", normal((d, f)) * f ** -0.5, c.type_of("proj"))
        tensor(w, p + "channel_mix_receptance.weight", normal((d, d)) * d ** -0.5, c.type_of("proj"))
    norm("output_norm")
    tensor(w, "output.weight", normal((c.vocab, d)) * d ** -0.5 * c.logit_scale,
           c.type_of("output"))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_mamba2(c, path, vocab_path=None):
    """A random Mamba-2 (one group of B and C): A = -exp(A_log) per head, steps
    softplus(dt) in [0.001, 0.1] through dt's bias."""
    w = gguf.GGUFWriter(path, "mamba2")
    if vocab_path:
        copy_tokenizer(w, vocab_path)
    else:
        w.add_tokenizer_model("none")  # the tests feed token ids
    w.add_vocab_size(c.vocab)
    w.add_context_length(1 << 20)
    w.add_embedding_length(c.dim)
    w.add_feed_forward_length(0)
    w.add_head_count(0)
    w.add_block_count(c.blocks)
    w.add_ssm_conv_kernel(c.conv)
    w.add_ssm_inner_size(c.inner)
    w.add_ssm_state_size(c.state)
    w.add_ssm_time_step_rank(c.rank)
    w.add_ssm_group_count(1)
    w.add_layer_norm_rms_eps(c.eps)
    d, di, n, heads = c.dim, c.inner, c.state, c.rank
    normal = rng.standard_normal
    tensor(w, "token_embd.weight", normal((c.vocab, d)), c.type_of("embd"))
    for i in range(c.blocks):
        p = f"blk.{i}."
        tensor(w, p + "attn_norm.weight", 1 + 0.1 * normal(d))
        tensor(w, p + "ssm_in.weight", normal((2 * di + 2 * n + heads, d)) * d ** -0.5,
               c.type_of("proj"))
        tensor(w, p + "ssm_conv1d.weight", normal((di + 2 * n, c.conv)) * 0.5)
        tensor(w, p + "ssm_conv1d.bias", normal(di + 2 * n) * 0.1)
        step = np.exp(rng.uniform(np.log(1e-3), np.log(0.1), heads))
        tensor(w, p + "ssm_dt.bias", step + np.log(-np.expm1(-step)))  # softplus^-1
        tensor(w, p + "ssm_a", -np.exp(rng.uniform(0, np.log(16), (heads, 1))))
        tensor(w, p + "ssm_d", 1 + 0.1 * normal((heads, 1)))
        tensor(w, p + "ssm_norm.weight", 1 + 0.1 * normal((1, di)))
        tensor(w, p + "ssm_out.weight", normal((d, di)) * di ** -0.5, c.type_of("proj"))
    tensor(w, "output_norm.weight", 1 + 0.1 * normal(d))
    if not c.tied:
        tensor(w, "output.weight", normal((c.vocab, d)) * d ** -0.5 * c.logit_scale,
               c.type_of("output"))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


WRITERS = {}


def write_model(c, path, vocab_path=None):
    """A random Mamba with weights of the scale a trained one has: A = -exp(A_log) with
    A_log ~ log(1..N), steps softplus(dt) in [0.001, 0.1] through dt's bias."""
    w = gguf.GGUFWriter(path, "mamba")
    if vocab_path:
        copy_tokenizer(w, vocab_path)
    else:
        w.add_tokenizer_model("none")  # the tests feed token ids
    w.add_vocab_size(c.vocab)
    w.add_context_length(1 << 20)  # as llama.cpp's converter writes it: no limit
    w.add_embedding_length(c.dim)
    w.add_feed_forward_length(0)
    w.add_head_count(0)
    w.add_block_count(c.blocks)
    w.add_ssm_conv_kernel(c.conv)
    w.add_ssm_inner_size(c.inner)
    w.add_ssm_state_size(c.state)
    w.add_ssm_time_step_rank(c.rank)
    w.add_layer_norm_rms_eps(c.eps)
    d, di, n, r = c.dim, c.inner, c.state, c.rank
    normal = rng.standard_normal
    tensor(w, "token_embd.weight", normal((c.vocab, d)), c.type_of("embd"))
    for i in range(c.blocks):
        p = f"blk.{i}."
        tensor(w, p + "attn_norm.weight", 1 + 0.1 * normal(d))
        tensor(w, p + "ssm_in.weight", normal((2 * di, d)) * d ** -0.5, c.type_of("proj"))
        tensor(w, p + "ssm_conv1d.weight", normal((di, c.conv)) * 0.5)
        tensor(w, p + "ssm_conv1d.bias", normal(di) * 0.1)
        tensor(w, p + "ssm_x.weight", normal((r + 2 * n, di)) * di ** -0.5, c.type_of("proj"))
        tensor(w, p + "ssm_dt.weight", normal((di, r)) * r ** -0.5)
        step = np.exp(rng.uniform(np.log(1e-3), np.log(0.1), di))
        tensor(w, p + "ssm_dt.bias", step + np.log(-np.expm1(-step)))  # softplus^-1
        a_log = np.log(np.tile(np.arange(1, n + 1, dtype=np.float64), (di, 1))) + 0.1 * normal((di, n))
        tensor(w, p + "ssm_a", -np.exp(a_log))
        tensor(w, p + "ssm_d", 1 + 0.1 * normal(di))
        tensor(w, p + "ssm_out.weight", normal((d, di)) * di ** -0.5, c.type_of("proj"))
    tensor(w, "output_norm.weight", 1 + 0.1 * normal(d))
    if not c.tied:
        tensor(w, "output.weight", normal((c.vocab, d)) * d ** -0.5 * c.logit_scale,
           c.type_of("output"))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


WRITERS.update(mamba=write_model, mamba2=write_mamba2, rwkv6=write_rwkv6)


def llama_cpp(path):
    from llama_cpp import Llama
    copy = path[:-len(".gguf")] + ".f32.gguf"
    if os.path.exists(copy):  # from an earlier run, perhaps of other weights
        os.remove(copy)
    f32_copy(path, copy)
    return Llama(model_path=copy, n_ctx=256, n_batch=256, logits_all=True, n_threads=2,
                 verbose=False)


def llama_cpp_logits(llm, tokens):
    """llama.cpp's logits at every position of `tokens`, from a fresh state."""
    llm.reset()
    llm._ctx.kv_cache_clear()  # the recurrent state too
    llm.eval([int(t) for t in tokens])
    return np.array(llm.scores[:len(tokens)], np.float64)


def compare(what, got, want, tol=TOL):
    scale = np.abs(want).max()
    error = np.abs(got - want)
    ranked = np.sort(want, -1)
    decided = ranked[:, -1] - ranked[:, -2] > 4 * tol * scale
    same = got.argmax(-1) == want.argmax(-1)
    ok = got.shape == want.shape and bool(np.all(error <= tol * scale)) and bool(np.all(same[decided]))
    print(f"{'PASS' if ok else 'FAIL'} {what}: max |error| {error.max():.3g} = "
          f"{error.max() / scale:.3g} of max |logit| {scale:.3g} (<= {tol}); argmax identical "
          f"at {int(same.sum())} of {len(same)} positions ({int(decided.sum())} decided: all must)")
    return ok


def compile_model(bin_dir, path, artifact, *args):
    compiled = subprocess.run([os.path.join(bin_dir, "kiln-compile"), path, "-o", artifact,
                               "--activations=f32", *args], capture_output=True, text=True)
    if compiled.returncode != 0:
        print(f"FAIL kiln-compile {path} {' '.join(args)}:\n{compiled.stderr}")
    return compiled.returncode == 0


def full_sequence(c, bin_dir, work, path, tokens):
    """@main over all tokens through kiln-run."""
    artifact = os.path.join(work, c.name + ".kiln")
    if not compile_model(bin_dir, path, artifact, "--seq-len", str(len(tokens))):
        return None
    inputs = {"tokens": tokens, "positions": np.arange(len(tokens), dtype=np.int64)}
    args = [os.path.join(bin_dir, "kiln-run"), artifact, "--quiet"]
    for key, data in inputs.items():
        np.save(os.path.join(work, f"{c.name}.{key}.npy"), data)
        args += ["--input", f"{key}={os.path.join(work, f'{c.name}.{key}.npy')}"]
    out = os.path.join(work, c.name + ".logits.npy")
    ran = subprocess.run(args + ["--output", f"logits={out}"], capture_output=True, text=True)
    if ran.returncode != 0:
        print(f"FAIL {c.name}: kiln-run failed:\n{ran.stdout}{ran.stderr}")
        return None
    return np.load(out).astype(np.float64)


def stateful(c, bin_dir, work, path, tokens, batch, library):
    """The prompt (c.prompt tokens) prefilled in batches of `batch` (the last one padded
    with token 0), then one decode per remaining token, over the recurrent state.
    Returns {position: logits} for every batch's last row and every decode."""
    artifact = os.path.join(work, f"{c.name}.state{batch}.kiln")
    if not compile_model(bin_dir, path, artifact, "--kv-cache", "--ctx", "64", "--seq-len",
                         str(batch)):
        return None
    module = kiln_session.Runtime(library).load(artifact)
    prefill = module.session("prefill")
    decode = module.session("decode", sharing_state_with=prefill)
    shape, got = {0: (np.float32, (1, c.vocab))}, {}
    for begin in range(0, c.prompt, batch):
        count = min(batch, c.prompt - begin)
        ids = np.zeros(batch, np.int32)
        ids[:count] = tokens[begin:begin + count]
        got[begin + count - 1] = prefill.run(
            shape, tokens=ids, positions=np.arange(begin, begin + batch, dtype=np.int64),
            logits_row=np.array([count - 1], np.int64))[0][0]
    for p in range(c.prompt, len(tokens)):
        got[p] = decode.run(shape, tokens=tokens[p:p + 1], positions=np.array([p], np.int64))[0][0]
    return got


def run(c, bin_dir, work, library):
    path = os.path.join(work, c.name + ".gguf")
    WRITERS[c.arch](c, path)
    tokens = rng.integers(0, c.vocab, c.tokens).astype(np.int32)
    llm = llama_cpp(path)
    want = llama_cpp_logits(llm, tokens)
    types = sorted({t.name for t in c.types.values()} | {"F32"})
    label = f"{c.arch} {c.name} ({'/'.join(types)}{', tied' if c.tied else ''})"
    got = full_sequence(c, bin_dir, work, path, tokens)
    ok = got is not None and compare(f"{label} full sequence vs llama.cpp", got, want)
    runs = {}
    for batch in (c.prompt, 5):
        rows = stateful(c, bin_dir, work, path, tokens, batch, library)
        if rows is None:
            return False
        runs[batch] = rows
        positions = sorted(rows)
        ok = compare(f"{label} prefill in batches of {batch} + {c.tokens - c.prompt} decodes vs "
                     f"llama.cpp at positions {positions[0]}..{positions[-1]}",
                     np.stack([rows[p] for p in positions]), want[positions]) and ok
    common = sorted(set(runs[c.prompt]) & set(runs[5]))
    ok = compare(f"{label} several prefill batches vs one, positions {common[0]}..{common[-1]}",
                 np.stack([runs[5][p] for p in common]).astype(np.float64),
                 np.stack([runs[c.prompt][p] for p in common]).astype(np.float64), BATCH_TOL) and ok
    return ok


def generate(bin_dir, work, c, vocab_path):
    """kiln-generate on model `c` carrying the vocabulary of `vocab_path`: prompt ids and
    greedy tokens against llama.cpp's tokenization and greedy decoding."""
    path = os.path.join(work, f"generate-{c.arch}.gguf")
    WRITERS[c.arch](c, path, vocab_path)
    prompt, steps = "Once upon a time, in a land far away", 12
    stats_path = os.path.join(work, "stats.json")
    ran = subprocess.run([os.path.join(bin_dir, "kiln-generate"), path, "-p", prompt, "-n",
                          str(steps), "--ctx", "64", "--batch", "4", "--temp", "0",
                          "--activations", "f32", "--cache-dir", os.path.join(work, "cache"),
                          "--stats-json", stats_path], capture_output=True)
    if ran.returncode != 0:
        output = (ran.stdout + ran.stderr).decode(errors="replace")
        print(f"FAIL kiln-generate exited {ran.returncode}:\n{output}")
        return False
    with open(stats_path) as f:
        got = json.load(f)["tokens"]
    # As kiln-generate encodes a prompt: special tokens as the file says (GPT-2: no BOS).
    ids = [int(t) for t in subprocess.run(
        [os.path.join(bin_dir, "kiln-tokenize"), "--special", "--parse-special", path, prompt],
        capture_output=True, text=True, check=True).stdout.split()]
    llm = llama_cpp(path)
    reference_ids = llm.tokenize(prompt.encode(), add_bos=True, special=True)
    ok = ids == reference_ids
    print(f"{'PASS' if ok else 'FAIL'} {c.arch} prompt ids: kiln {ids}, llama.cpp {reference_ids}")
    # Greedy decoding over llama.cpp's logits, each step from the whole sequence so far;
    # kiln's tokens must equal it before the first step where llama.cpp's top two are
    # within the tolerance (4x TOL of the largest logit) of each other: from there on
    # either continuation is right.
    sequence, expected, decided = list(reference_ids), [], steps
    for step in range(steps):
        logits = llama_cpp_logits(llm, sequence)[-1]
        top2 = np.sort(logits)[-2:]
        if top2[1] - top2[0] <= 4 * TOL * np.abs(logits).max() and decided == steps:
            decided = step
        expected.append(int(np.argmax(logits)))
        sequence.append(expected[-1])
    greedy_ok = got[:decided] == expected[:decided] and len(got) == steps
    print(f"{'PASS' if greedy_ok else 'FAIL'} {c.arch} kiln-generate greedy tokens {got}, llama.cpp "
          f"{expected} (the first {decided} decided: must be equal)")
    return ok and greedy_ok


CONFIGS = [
    Config("f32"),
    Config("f16_tied_odd", dim=48, inner=96, state=5, conv=3, rank=3, blocks=1, tied=True,
           types={"embd": GT.F16, "proj": GT.F16}),
    Config("q8_0", types={"embd": GT.Q8_0, "proj": GT.Q8_0, "output": GT.Q8_0}),
    Config("f32", arch="mamba2", inner=128, state=16, rank=8),
    Config("f16_tied", arch="mamba2", dim=48, inner=96, state=12, conv=3, rank=4, blocks=1,
           tied=True, types={"embd": GT.F16, "proj": GT.F16}),
    Config("f32", arch="rwkv6"),
    Config("f16_rescaled", arch="rwkv6", dim=96, head=32, ffn=160, blocks=3, rescale=2,
           types={"embd": GT.F16, "proj": GT.F16, "output": GT.F16}),
    Config("q8_0", arch="rwkv6", types={"embd": GT.Q8_0, "proj": GT.Q8_0, "output": GT.Q8_0}),
]


def main():
    bin_dir, work, library, vocab_path = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    results = [run(c, bin_dir, work, library) for c in CONFIGS]
    # Mamba with GPT-2's byte-level BPE (the family of its GPT-NeoX tokenizer); RWKV-6
    # with a vocabulary in the world tokenizer's format (tokenizers/rwkv_vs_llamacpp.py).
    if os.path.exists(vocab_path):
        vocab = len(gguf.GGUFReader(vocab_path).fields["tokenizer.ggml.tokens"].data)
        results.append(generate(bin_dir, work, Config("generate", vocab=vocab, logit_scale=20),
                                vocab_path))
    else:
        print(f"FAIL {vocab_path} not found (../shared/data/tokenizers holds it)")
        results.append(False)
    world = os.path.join(work, "rwkv-world-vocab.gguf")
    size = rwkv_world.write_vocab(world)
    results.append(generate(bin_dir, work, Config("generate", arch="rwkv6", vocab=size,
                                                  logit_scale=20), world))
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
