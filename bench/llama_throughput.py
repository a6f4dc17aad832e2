"""Throughput of kiln-generate on a TinyLlama-shaped model (dim 2048, 22 blocks, 32
query / 4 KV heads, FFN 5632, vocab 32000) with random Q4_0, Q4_K, Q8_0 or F16 weights and the
real LLaMA vocabulary: compile time, prompt and generation tokens/s at 1 and 2 threads.

usage: python bench/llama_throughput.py VOCAB.gguf WORK_DIR [--ctx N] [-n N] [--type q4_k]
       [--blocks N] [--threads 1,2] [--bin BUILD/bin] [--write-only]
(--write-only writes the model and prints its path: `bench/gemma.py --model PATH` then
compares kiln with llama.cpp on it)
(the weights are random valid blocks: the text is gibberish; the speed is real; fewer
--blocks give a quick, proportionally faster model for iterating on kernels)
"""
import argparse
import json
import os
import subprocess
import sys

import gguf
import numpy as np
from gguf import GGMLQuantizationType as GT

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "e2e"))
import generate_vs_numpy  # noqa: E402  (copies the tokenizer keys)
import ggml_blocks  # noqa: E402

rng = np.random.default_rng(0)


# Scale fields (byte offset -> range) small enough that the activations stay finite.
BLOCK_SCALES = {GT.Q4_0: {0: (0.004, 0.004)}, GT.Q4_K: {0: (0.0002, 0.0002), 2: (0.0001, 0.0001)},
                GT.Q8_0: {0: (0.00025, 0.00025)}}
TYPES = {"q4_0": GT.Q4_0, "q4_k": GT.Q4_K, "q8_0": GT.Q8_0, "f16": GT.F16}


def random_blocks(qtype, rows, cols):
    return ggml_blocks.random_blocks(rng, qtype, rows, cols, BLOCK_SCALES[qtype])


class Writer:
    def __init__(self, path):
        self.writer = gguf.GGUFWriter(path, "llama")
        self.weights = {}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("vocab")
    parser.add_argument("work")
    parser.add_argument("--ctx", type=int, default=256)
    parser.add_argument("-n", type=int, default=16)
    parser.add_argument("--type", choices=sorted(TYPES), default="q4_0")
    parser.add_argument("--write-only", action="store_true",
                        help="write the GGUF (for bench/gemma.py --model) and print its path")
    parser.add_argument("--blocks", type=int, default=22)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--bin", default=os.path.join(HERE, "..", "build", "bin"),
                        help="directory holding kiln-generate")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    qtype = TYPES[args.type]
    path = os.path.join(args.work, f"tinyllama-shaped-{args.type}-{args.blocks}.gguf")
    dim, blocks, heads, kv, ffn = 2048, args.blocks, 32, 4, 5632
    if not os.path.exists(path):
        model = Writer(path)
        w = model.writer
        generate_vs_numpy.with_vocabulary(model, args.vocab)
        w.add_context_length(2048)
        w.add_embedding_length(dim)
        w.add_block_count(blocks)
        w.add_feed_forward_length(ffn)
        w.add_head_count(heads)
        w.add_head_count_kv(kv)
        w.add_rope_freq_base(10000.0)
        w.add_rope_dimension_count(dim // heads)
        w.add_layer_norm_rms_eps(1e-5)
        hd = dim // heads

        def t(name, rows, cols):
            if qtype == GT.F16:
                w.add_tensor(name, (rng.standard_normal((rows, cols)) * 0.02).astype(np.float16))
            else:
                w.add_tensor(name, random_blocks(qtype, rows, cols), raw_dtype=qtype)

        t("token_embd.weight", 32000, dim)
        for i in range(blocks):
            p = f"blk.{i}."
            w.add_tensor(p + "attn_norm.weight", np.ones(dim, np.float32))
            t(p + "attn_q.weight", dim, dim)
            t(p + "attn_k.weight", kv * hd, dim)
            t(p + "attn_v.weight", kv * hd, dim)
            t(p + "attn_output.weight", dim, dim)
            w.add_tensor(p + "ffn_norm.weight", np.ones(dim, np.float32))
            t(p + "ffn_gate.weight", ffn, dim)
            t(p + "ffn_up.weight", ffn, dim)
            t(p + "ffn_down.weight", dim, ffn)
        w.add_tensor("output_norm.weight", np.ones(dim, np.float32))
        t("output.weight", 32000, dim)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    if args.write_only:
        print(path)
        return
    binary = os.path.join(args.bin, "kiln-generate")
    for threads in (int(t) for t in args.threads.split(",")):
        stats = os.path.join(args.work, f"stats-{threads}.json")
        subprocess.run([binary, path, "-p", "Once upon a time", "-n", str(args.n), "--ctx",
                        str(args.ctx), "--threads", str(threads), "--temp", "0", "--cache-dir",
                        os.path.join(args.work, "cache"), "--stats-json", stats], check=True)
        with open(stats) as f:
            s = json.load(f)
        print(f"{args.type}, {blocks} blocks, threads {threads}: compile {s['compile_seconds']:.1f} s, prompt "
              f"{s['prompt_tokens_per_second']:.2f} tokens/s, generation "
              f"{s['generation_tokens_per_second']:.3f} tokens/s (ctx {args.ctx})")


if __name__ == "__main__":
    main()
