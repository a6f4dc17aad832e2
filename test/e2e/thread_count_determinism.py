"""The kernel thread count does not change results (docs/determinism.md): the same
artifact and inputs give the same bytes at 1 and at 2 threads (kiln-run --threads) on
ONNX models (the bundled MLP, onnx_vs_onnxruntime.py's CNN and attention block), a
product large enough to run on Halide's thread pool, and random-weight llama GGUFs
(f32, and Q8_0 / Q4_K / Q6_K with a KV cache); and kiln-generate with a seed samples the
same tokens at 1, 2 and 3 threads. Comparisons are of raw bytes: no tolerance.

usage: thread_count_determinism.py BIN_DIR WORK_DIR VOCAB_GGUF
"""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
from gguf import GGMLQuantizationType as GT

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate_vs_numpy  # noqa: E402  (with_vocabulary)
import llama_vs_numpy as llama  # noqa: E402  (the GGUF writer)
import onnx_vs_onnxruntime as onnx_models  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
THREADS = (1, 2)


def compile_model(bin_dir, source, artifact, *extra):
    ran = subprocess.run([os.path.join(bin_dir, "kiln-compile"), source, "-o", artifact, *extra],
                         capture_output=True, text=True)
    if ran.returncode != 0:
        sys.exit(f"FAIL kiln-compile {source}:\n{ran.stderr}")


def outputs_at(bin_dir, work, name, artifact, inputs, threads, entry=None):
    """The bytes of every output of one kiln-run at `threads` threads, by output name."""
    out_dir = os.path.join(work, f"{name}.threads{threads}")
    os.makedirs(out_dir, exist_ok=True)
    args = [os.path.join(bin_dir, "kiln-run"), artifact, "--quiet", "--threads", str(threads),
            "--output-dir", out_dir]
    if entry:
        args += ["--entry", entry]
    for key, path in inputs.items():
        args += ["--input", f"{key}={path}"]
    ran = subprocess.run(args, capture_output=True, text=True)
    if ran.returncode != 0:
        sys.exit(f"FAIL {name}: kiln-run --threads {threads} exited {ran.returncode}:\n"
                 f"{ran.stdout}{ran.stderr}")
    return {f: open(os.path.join(out_dir, f), "rb").read() for f in sorted(os.listdir(out_dir))}


def same_bytes_at_every_thread_count(bin_dir, work, name, artifact, feeds, entry=None):
    inputs = {}
    for key, data in feeds.items():
        inputs[key] = os.path.join(work, f"{name}.{key}.npy")
        np.save(inputs[key], data)
    runs = {t: outputs_at(bin_dir, work, name, artifact, inputs, t, entry) for t in THREADS}
    first = runs[THREADS[0]]
    differ = [f"{out} at {t} threads" for t in THREADS[1:] for out in first
              if runs[t].get(out) != first[out]]
    ok = not differ and all(runs[t].keys() == first.keys() for t in THREADS)
    print(f"{'PASS' if ok else 'FAIL'} {name}: {len(first)} outputs, "
          + ("bitwise equal at " + " and ".join(map(str, THREADS)) + " threads" if ok
             else "differ: " + ", ".join(differ)))
    return ok


def onnx_cases(bin_dir, work):
    rng = np.random.default_rng(11)
    results = []
    for build in (onnx_models.cnn, onnx_models.attention_block):
        m = build(rng)
        source = os.path.join(work, m.graph.name + ".onnx")
        onnx.save(m, source)
        artifact = os.path.join(work, m.graph.name + ".kiln")
        compile_model(bin_dir, source, artifact)
        results.append(same_bytes_at_every_thread_count(
            bin_dir, work, "onnx-" + m.graph.name, artifact, onnx_models.random_inputs(rng, m)))
    bundled = os.path.join(HERE, "..", "..", "examples", "models")
    artifact = os.path.join(work, "mlp.kiln")
    compile_model(bin_dir, os.path.join(bundled, "mlp.onnx"), artifact)
    results.append(same_bytes_at_every_thread_count(
        bin_dir, work, "onnx-bundled-mlp", artifact,
        {"x": np.load(os.path.join(bundled, "mlp-input.npy"))}))
    artifact = os.path.join(work, "matmul.kiln")
    compile_model(bin_dir, os.path.join(HERE, "Inputs", "matmul.mlir"), artifact)
    results.append(same_bytes_at_every_thread_count(
        bin_dir, work, "mlir-parallel-matmul", artifact,
        {"x": rng.standard_normal((64, 256)).astype(np.float32),
         "w": rng.standard_normal((256, 256)).astype(np.float32)}))
    return results


# Large enough that the products, the attention and the output projection run in
# parallel over 2 threads (Halide's schedule parallelizes from 16K multiply-adds).
LLAMAS = [
    llama.Config("det_f32", vocab=512, dim=128, heads=4, kv_heads=2, ffn=256, blocks=2,
                 context=32, seq_len=16),
    llama.Config("det_q8_0_q4_k_q6_k", vocab=512, dim=256, heads=4, kv_heads=2, ffn=512,
                 blocks=2, context=32, seq_len=16,
                 types={"embd": GT.Q8_0, "attn": GT.Q4_K, "attn_output": GT.Q6_K,
                        "ffn": GT.Q8_0, "ffn_down": GT.Q6_K, "output": GT.Q4_K}),
]


def llama_cases(bin_dir, work):
    rng = np.random.default_rng(12)
    results = []
    for c in LLAMAS:
        path = os.path.join(work, c.name + ".gguf")
        llama.Model(c, path).write()
        n = c.tokens
        tokens = rng.integers(0, c.vocab, n).astype(np.int32)
        artifact = os.path.join(work, c.name + ".kiln")
        compile_model(bin_dir, path, artifact, "--seq-len", str(n))
        results.append(same_bytes_at_every_thread_count(
            bin_dir, work, c.name, artifact,
            {"tokens": tokens, "positions": np.arange(n, dtype=np.int64)}))
        # The KV-cache prefill entry point (its logits row; the cache is not an output).
        artifact = os.path.join(work, c.name + ".kv.kiln")
        compile_model(bin_dir, path, artifact, "--kv-cache", "--ctx", str(c.context),
                      "--seq-len", str(n))
        results.append(same_bytes_at_every_thread_count(
            bin_dir, work, c.name + "-prefill", artifact,
            {"tokens": tokens, "positions": np.arange(n, dtype=np.int64),
             "logits_row": np.array([n - 1], np.int64)}, entry="prefill"))
    return results


def generate_case(bin_dir, work, vocab_path):
    """Seeded sampling (temperature 0.8, top-k 40) through prefill and decode."""
    if not os.path.exists(vocab_path):
        print(f"SKIP kiln-generate: {vocab_path} not found")
        return []
    import gguf
    vocab = len(gguf.GGUFReader(vocab_path).fields["tokenizer.ggml.tokens"].data)
    c = llama.Config("det_chat", vocab=vocab, dim=64, heads=4, kv_heads=2, ffn=96, blocks=2,
                     context=48, types={k: GT.Q8_0 for k in ("embd", "attn", "output",
                                                             "attn_output", "ffn", "ffn_down")})
    path = os.path.join(work, "det_chat.gguf")
    model = llama.Model(c, path)
    generate_vs_numpy.with_vocabulary(model, vocab_path)
    model.write()
    tokens = {}
    for threads in (1, 2, 3):
        stats = os.path.join(work, f"generate.threads{threads}.json")
        ran = subprocess.run([os.path.join(bin_dir, "kiln-generate"), path, "-p",
                              "Once upon a time", "-n", "24", "--ctx", "48", "--temp", "0.8",
                              "--seed", "42", "--threads", str(threads), "--cache-dir",
                              os.path.join(work, "cache"), "--stats-json", stats],
                             capture_output=True)
        # Bytes, not text: a random model's sampled pieces need not be valid UTF-8.
        if ran.returncode != 0:
            sys.exit(f"FAIL kiln-generate --threads {threads} exited {ran.returncode}:\n"
                     f"{ran.stdout!r}{ran.stderr.decode(errors='replace')}")
        with open(stats) as f:
            tokens[threads] = json.load(f)["tokens"]
    ok = tokens[1] == tokens[2] == tokens[3]
    print(f"{'PASS' if ok else 'FAIL'} kiln-generate --seed 42 --temp 0.8: "
          + (f"the same {len(tokens[1])} tokens at 1, 2 and 3 threads" if ok
             else f"tokens differ: {tokens}"))
    return [ok]


def main():
    bin_dir, work, vocab_path = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(work, exist_ok=True)
    results = (onnx_cases(bin_dir, work) + llama_cases(bin_dir, work)
               + generate_case(bin_dir, work, vocab_path))
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
