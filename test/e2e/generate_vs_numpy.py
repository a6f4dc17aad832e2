"""kiln-generate end to end: a tiny random-weight llama carrying the real LLaMA
SentencePiece vocabulary, compiled with a KV cache (prefill + decode entry points),
generates greedily exactly the tokens a numpy reference (full recomputation) picks,
whatever the prefill batch, streams text, reports tokens/s, gives identical tokens
for the same seed, and profiles (--profile) without changing them.

usage: generate_vs_numpy.py BIN_DIR WORK_DIR VOCAB_GGUF
"""
import json
import os
import subprocess
import sys

import gguf
import numpy as np
from gguf import GGMLQuantizationType as GT

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_vs_numpy as llama  # noqa: E402  (the model writer and numpy forward pass)


def with_vocabulary(model, vocab_path):
    """Copies tokenizer.ggml.* from a vocab-only GGUF into the model being written."""
    reader = gguf.GGUFReader(vocab_path)
    field = reader.fields
    w = model.writer
    w.add_tokenizer_model(bytes(field["tokenizer.ggml.model"].parts[-1]).decode())
    tokens = [bytes(field["tokenizer.ggml.tokens"].parts[i]).decode("utf-8", "surrogateescape")
              for i in field["tokenizer.ggml.tokens"].data]
    w.add_token_list(tokens)
    w.add_token_scores([float(field["tokenizer.ggml.scores"].parts[i][0])
                        for i in field["tokenizer.ggml.scores"].data])
    w.add_token_types([int(field["tokenizer.ggml.token_type"].parts[i][0])
                       for i in field["tokenizer.ggml.token_type"].data])
    for key, add in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id),
                     ("unknown", w.add_unk_token_id)):
        name = f"tokenizer.ggml.{key}_token_id"
        if name in field:
            add(int(field[name].parts[-1][0]))
    return len(tokens)


def vocabulary_size(vocab_path):
    """The size of the vocabulary in `vocab_path`, or None (the ctest SKIP line printed)
    when the file is not there."""
    if not os.path.exists(vocab_path):
        print(f"SKIP: {vocab_path} not found (../shared/data/tokenizers holds it)")
        return None
    return len(gguf.GGUFReader(vocab_path).fields["tokenizer.ggml.tokens"].data)


def main():
    bin_dir, work, vocab_path = sys.argv[1], sys.argv[2], sys.argv[3]
    vocab = vocabulary_size(vocab_path)
    if vocab is None:
        return 77
    os.makedirs(work, exist_ok=True)
    c = llama.Config("chat", vocab=vocab, dim=64, heads=4, kv_heads=2, ffn=96, blocks=2,
                     context=32, types={"embd": GT.Q8_0, "attn": GT.Q8_0, "output": GT.Q8_0,
                                                   "attn_output": GT.Q8_0, "ffn": GT.Q8_0,
                                                   "ffn_down": GT.Q8_0})
    path = os.path.join(work, "chat.gguf")
    model = llama.Model(c, path)
    with_vocabulary(model, vocab_path)
    model.write()

    prompt, steps = "Once upon a time", 8
    cache = os.path.join(work, "cache")

    def generate(*extra):
        stats = os.path.join(work, "stats.json")
        ran = subprocess.run([os.path.join(bin_dir, "kiln-generate"), path, "-p", prompt, "-n",
                              str(steps), "--ctx", "32", "--cache-dir", cache, "--stats-json",
                              stats, "--activations", "f32", *extra], capture_output=True,
                             text=True)
        if ran.returncode != 0:
            print(f"FAIL kiln-generate exited {ran.returncode}:\n{ran.stdout}{ran.stderr}")
            sys.exit(1)
        with open(stats) as f:
            return ran, json.load(f)

    ran, stats = generate("--temp", "0")
    got = stats["tokens"]
    # The reference: the prompt's ids from the same tokenizer (kiln-tokenize --bos),
    # then greedy argmax over the numpy forward pass, one token at a time.
    ids = subprocess.run([os.path.join(bin_dir, "kiln-tokenize"), "--bos", path, prompt],
                         capture_output=True, text=True, check=True).stdout.split()
    tokens = [int(t) for t in ids]
    expected = []
    for _ in range(steps):
        logits = llama.forward(c, model.weights, np.array(tokens), np.arange(len(tokens)))[-1]
        top2 = np.sort(logits)[-2:]
        nxt = int(np.argmax(logits))
        expected.append(nxt)
        tokens.append(nxt)
        if len(expected) > len(got) or got[len(expected) - 1] != nxt:
            print(f"FAIL greedy token {len(expected) - 1}: kiln {got[len(expected) - 1:]} vs "
                  f"numpy {nxt} (top-2 margin {top2[1] - top2[0]:.3g})")
            return 1
    print(f"PASS greedy: {got}")
    # The prompt prefilled two tokens at a time (several passes over the cache) must
    # give the same tokens.
    batched = generate("--temp", "0", "--batch", "2")[1]["tokens"]
    if batched != got:
        print(f"FAIL: --batch 2 gave {batched}, --batch 32 gave {got}")
        return 1
    print("PASS prefill in batches of 2 gives the same tokens")
    if "tokens/s" not in ran.stderr or not ran.stdout.startswith(prompt):
        print(f"FAIL: no stream or no tokens/s report:\n{ran.stdout}{ran.stderr}")
        return 1
    print(f"PASS report: {ran.stderr.strip()}")

    # --profile: the same tokens, a table per session, and a Chrome trace holding every
    # kernel call of the one prefill pass and the steps - 1 decodes.
    trace_path = os.path.join(work, "trace.json")
    profiled, profiled_stats = generate("--temp", "0", "--trace", trace_path)
    with open(trace_path) as f:
        trace = json.load(f)
    tracks = {e["tid"]: e["args"]["name"] for e in trace["traceEvents"]
              if e["ph"] == "M" and e["name"] == "thread_name"}
    calls = {name: [e for e in trace["traceEvents"] if e.get("cat") == "kernel" and
                    tracks[e["tid"]] == name] for name in ("prefill", "decode")}
    per_run = {}
    for name, runs in (("prefill", 1), ("decode", steps - 1)):
        dispatches = {e["args"]["dispatch"] for e in calls[name]}
        per_run[name] = len(dispatches)
        if (len(calls[name]) != runs * len(dispatches) or f"{name}: {runs} run" not in
                profiled.stderr or any(e["ph"] != "X" or e["dur"] < 0 for e in calls[name])):
            print(f"FAIL --profile {name}: {len(calls[name])} kernel calls in the trace of "
                  f"{runs} runs of {len(dispatches)} dispatches:\n{profiled.stderr}")
            return 1
    if (profiled_stats["tokens"] != got or trace["displayTimeUnit"] != "ms" or
            "GFLOP/s" not in profiled.stderr):
        print(f"FAIL --profile: tokens {profiled_stats['tokens']} (without: {got}):\n"
              f"{profiled.stderr}")
        return 1
    print(f"PASS --profile: same tokens, {per_run['prefill']} dispatches per prefill and "
          f"{per_run['decode']} per decode in the trace")

    # A hot, unfiltered distribution, so that the seed really decides the tokens.
    hot = ("--temp", "5", "--top-k", "0", "--top-p", "1", "--min-p", "0")
    first = generate(*hot, "--seed", "7")[1]["tokens"]
    second = generate(*hot, "--seed", "7")[1]["tokens"]
    other = generate(*hot, "--seed", "8")[1]["tokens"]
    if first != second or first == other:
        print(f"FAIL: seed 7 gave {first} and {second}; seed 8 gave {other}")
        return 1
    print(f"PASS seeded sampling is deterministic: seed 7 {first}, seed 8 {other}")
    print("5 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
