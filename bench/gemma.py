"""Gemma 3 270M (Q4_K_M GGUF, installed by scripts/setup.sh): prompt evaluation
(prefill) and generation (decode) tokens/s, kiln vs llama.cpp (llama-cpp-python from
the test venv), same file, same machine, same run, at 1 and 2 threads.

kiln: kiln-generate with a KV cache (compiled once into ~/.cache/kiln/models), the whole
prompt in one prefill pass (--batch = prompt length), then greedy single-token decodes;
the figures are the ones kiln-generate measures itself (--stats-json). "kiln" is its
default (decode-step products over 8-bit activations, as llama.cpp computes them);
"kiln-f32" is kiln-generate --activations f32 (f32 activations: the closest to the exact
result).
llama.cpp: Llama(n_batch = prompt length), eval(prompt), then greedy eval([token]).

usage: python bench/gemma.py [--prompt-tokens 128] [--gen 64] [--threads 1 2] [--repeat 3]
       [--model OTHER.gguf]
       (run with the test venv's python: "$(bash scripts/setup.sh --print-venv)/bin/python")
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "models"))
import kiln_models  # noqa: E402
import machine  # noqa: E402  (bench/machine.py, beside this file)

TEXT = ("The history of computing is a story of people who wanted to calculate faster than "
        "they could by hand. Mechanical calculators, punched cards, vacuum tubes, transistors "
        "and integrated circuits each made the machines smaller, cheaper and more reliable. ")


def prompt_of(llm, count):
    """A prompt of exactly `count` tokens (BOS included) and its text."""
    text = TEXT
    while len(llm.tokenize(text.encode(), add_bos=True)) < count:
        text += TEXT
    words = text.split(" ")
    while len(llm.tokenize(" ".join(words).encode(), add_bos=True)) > count:
        words.pop()
    text = " ".join(words)
    return text, len(llm.tokenize(text.encode(), add_bos=True))


def bench_llama(model, text, gen, threads, batch):
    from llama_cpp import Llama
    llm = Llama(model_path=model, n_ctx=512, n_batch=batch, n_threads=threads,
                n_threads_batch=threads, verbose=False)
    tokens = llm.tokenize(text.encode(), add_bos=True)

    def last_logits():  # the batch's last token's logits (llama.cpp computes no others)
        return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))

    start = time.perf_counter()
    llm.eval(tokens)
    prompt_s = time.perf_counter() - start
    token = int(np.argmax(last_logits()))
    start = time.perf_counter()
    for _ in range(gen - 1):
        llm.eval([token])
        token = int(np.argmax(last_logits()))
    gen_s = time.perf_counter() - start
    return len(tokens) / prompt_s, (gen - 1) / gen_s


def bench_kiln(bin_dir, model, text, gen, threads, batch, *extra):
    with tempfile.TemporaryDirectory() as work:
        stats = os.path.join(work, "stats.json")
        subprocess.run([os.path.join(bin_dir, "kiln-generate"), model, "-p", text, "-n", str(gen),
                        "--ctx", "256", "--batch", str(batch), "--temp", "0", "--threads",
                        str(threads), "--stats-json", stats, *extra], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(stats) as f:
            s = json.load(f)
    return s["prompt_tokens_per_second"], s["generation_tokens_per_second"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--gen", type=int, default=64)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine; the best is kept")
    parser.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "bin"))
    parser.add_argument("--model", help="another GGUF to compare on (default: Gemma 3 270M "
                        "Q4_K_M; bench/llama_throughput.py --write-only makes TinyLlama-shaped ones)")
    args = parser.parse_args()
    model = args.model or str(kiln_models.gemma_gguf())
    label = os.path.basename(args.model) if args.model else "Gemma 3 270M Q4_K_M"
    from llama_cpp import Llama
    counter = Llama(model_path=model, n_ctx=512, vocab_only=True, verbose=False)
    text, count = prompt_of(counter, args.prompt_tokens)
    # Compile (or find in the cache) before timing anything.
    bench_kiln(args.bin_dir, model, text, 2, 1, count)
    bench_kiln(args.bin_dir, model, text, 2, 1, count, "--activations", "f32")
    limits = machine.measure(args.bin_dir, args.threads)
    # A decode step reads every weight once (the tied output projection reads the whole
    # embedding table), so tensor bytes x tokens/s is its read bandwidth.
    from gguf import GGUFReader
    weight_bytes = sum(int(t.n_bytes) for t in GGUFReader(model).tensors)
    print(f"{label}, prompt {count} tokens, {args.gen} generated, best of "
          f"{args.repeat} runs; {weight_bytes / 1e6:.0f} MB of weights read per decode step")
    print(f"{'threads':>7} {'engine':>9} {'prefill tok/s':>14} {'decode tok/s':>13}")
    for threads in args.threads:
        rows = {}
        for engine, run in (("kiln", lambda: bench_kiln(args.bin_dir, model, text, args.gen,
                                                          threads, count)),
                            ("kiln-f32", lambda: bench_kiln(args.bin_dir, model, text, args.gen,
                                                            threads, count, "--activations", "f32")),
                            ("llama.cpp", lambda: bench_llama(model, text, args.gen, threads,
                                                              count))):
            results = [run() for _ in range(args.repeat)]
            rows[engine] = (max(r[0] for r in results), max(r[1] for r in results))
            print(f"{threads:>7} {engine:>9} {rows[engine][0]:>14.1f} {rows[engine][1]:>13.1f}")
        l = rows["llama.cpp"]
        for engine in ("kiln", "kiln-f32"):
            k = rows[engine]
            print(f"{threads:>7} {engine + '/llama.cpp':>9} {k[0] / l[0]:>14.2f} {k[1] / l[1]:>13.2f}")
        bandwidth = machine.read_bandwidth(limits, threads)
        for engine, (_, decode) in rows.items():
            print(f"{threads:>7} {engine:>9} decode reads {decode * weight_bytes / 1e9:.1f} GB/s "
                  f"= {decode * weight_bytes / 1e9 / bandwidth * 100:.0f}% of the measured "
                  f"{bandwidth:.1f} GB/s")


if __name__ == "__main__":
    main()
