"""Recurrent language models against llama.cpp (llama-cpp-python): prefill and decode
tokens/s of kiln-generate and llama.cpp on the same file, same machine, same run,
measured as bench/gemma.py measures them (the whole prompt in one prefill batch, then
greedy single-token decodes; best of --repeat), with random Q8_0 or F16 weights
(`--type`) and GPT-2's byte-level BPE vocabulary (50,257 tokens):

- `--arch mamba` (default): ~1.4B-shaped, state-spaces/mamba-1.4b's sizes (width 2048,
  48 blocks, inner 4096, state 16, time-step rank 128, kernel 4; Mamba's own GPT-NeoX
  vocabulary has 50,280 tokens). The random weights have a trained model's scales
  (A = -exp(A_log) with A_log ~ log(1..16), steps 0.001-0.1), so the scan neither
  explodes nor dies out.
- `--arch rwkv6`: ~1.6B-shaped, RWKV-6 "Finch" 1.6B's sizes (width 2048, 24 blocks, head
  size 64, FFN 7168, token-shift ranks 32 and 64, rescaled every 6 blocks; its own world
  vocabulary has 65,536 tokens), written by the e2e test's writer
  (test/e2e/recurrent_vs_llamacpp.py: decays in (0.37, 0.99), lerps in [0, 1]).

The model is written once into --dir (default ~/.cache/kiln/bench).

usage: python bench/recurrent.py [--arch mamba|rwkv6] [--type Q8_0|F16] [--threads 2]
       [--prompt-tokens 128] [--gen 32] [--repeat 2] [--blocks N] [--write-only]
       (run with the test venv's python: "$(bash scripts/setup.sh --print-venv)/bin/python")
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gemma  # noqa: E402  (bench/gemma.py: the two engines' measurements)
import machine  # noqa: E402

VOCAB = os.path.join(ROOT, "..", "shared", "data", "tokenizers", "ggml-vocab-gpt-2.gguf")
DIM, INNER, STATE, RANK, CONV = 2048, 4096, 16, 128, 4


def write_rwkv6(path, qtype_name, blocks):
    sys.path.insert(0, os.path.join(ROOT, "test", "e2e"))
    import recurrent_vs_llamacpp as e2e  # the test's RWKV-6 writer
    from gguf import GGMLQuantizationType as GT
    import gguf
    qtype = GT[qtype_name]
    vocab = len(gguf.GGUFReader(VOCAB).fields["tokenizer.ggml.tokens"].data)
    config = e2e.Config("bench", arch="rwkv6", vocab=vocab, dim=2048, blocks=blocks, head=64,
                        ffn=7168, mix_rank=32, decay_rank=64, rescale=6,
                        types={"embd": qtype, "proj": qtype, "output": qtype})
    partial = path + ".partial"
    e2e.write_rwkv6(config, partial, VOCAB)
    os.replace(partial, path)


def write_model(path, qtype_name, blocks):
    import gguf
    from gguf import GGMLQuantizationType as GT
    from gguf import quants
    qtype = GT[qtype_name]
    rng = np.random.default_rng(1400)
    reader = gguf.GGUFReader(VOCAB)
    vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
    partial = path + ".partial"
    w = gguf.GGUFWriter(partial, "mamba")
    for key, field in reader.fields.items():
        if key.startswith("tokenizer.ggml."):
            if field.types[0] == gguf.GGUFValueType.ARRAY:
                w.add_key_value(key, field.contents(), field.types[0], sub_type=field.types[-1])
            else:
                w.add_key_value(key, field.contents(), field.types[0])
    w.add_vocab_size(vocab)
    w.add_context_length(1 << 20)
    w.add_embedding_length(DIM)
    w.add_feed_forward_length(0)
    w.add_head_count(0)
    w.add_block_count(blocks)
    w.add_ssm_conv_kernel(CONV)
    w.add_ssm_inner_size(INNER)
    w.add_ssm_state_size(STATE)
    w.add_ssm_time_step_rank(RANK)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(7 if qtype == GT.Q8_0 else 1)

    def add(name, values, packed=True):
        values = values.astype(np.float32)
        if not packed or values.ndim == 1:
            w.add_tensor(name, values)  # norms, biases, A, D and the convolution stay F32
        elif qtype == GT.F16:
            w.add_tensor(name, values.astype(np.float16))
        else:
            w.add_tensor(name, quants.quantize(values, qtype), raw_dtype=qtype)

    normal = rng.standard_normal
    add("token_embd.weight", normal((vocab, DIM), dtype=np.float32) * 0.02)
    for i in range(blocks):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", np.ones(DIM))
        add(p + "ssm_in.weight", normal((2 * INNER, DIM), dtype=np.float32) * DIM ** -0.5)
        add(p + "ssm_conv1d.weight", normal((INNER, CONV), dtype=np.float32) * 0.5, packed=False)
        add(p + "ssm_conv1d.bias", normal(INNER) * 0.1)
        add(p + "ssm_x.weight", normal((RANK + 2 * STATE, INNER), dtype=np.float32) * INNER ** -0.5)
        add(p + "ssm_dt.weight", normal((INNER, RANK), dtype=np.float32) * RANK ** -0.5)
        step = np.exp(rng.uniform(np.log(1e-3), np.log(0.1), INNER))
        add(p + "ssm_dt.bias", step + np.log(-np.expm1(-step)))
        add(p + "ssm_a", -np.tile(np.arange(1, STATE + 1, dtype=np.float32), (INNER, 1)),
            packed=False)
        add(p + "ssm_d", np.ones(INNER))
        add(p + "ssm_out.weight", normal((DIM, INNER), dtype=np.float32) * INNER ** -0.5)
    add("output_norm.weight", np.ones(DIM))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(partial, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="mamba", choices=["mamba", "rwkv6"])
    parser.add_argument("--type", default="Q8_0", choices=["Q8_0", "F16"])
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--gen", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--blocks", type=int, help="default: 48 (mamba), 24 (rwkv6)")
    parser.add_argument("--dir", default=os.path.expanduser("~/.cache/kiln/bench"))
    parser.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "bin"))
    parser.add_argument("--write-only", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    if args.blocks is None:
        args.blocks = 48 if args.arch == "mamba" else 24
    size = "1.4b" if args.arch == "mamba" else "1.6b"
    model = os.path.join(args.dir, f"{args.arch}-{size}-shaped-{args.blocks}-{args.type.lower()}.gguf")
    if not os.path.exists(model):
        (write_model if args.arch == "mamba" else write_rwkv6)(model, args.type, args.blocks)
    if args.write_only:
        print(model)
        return
    from llama_cpp import Llama
    counter = Llama(model_path=model, n_ctx=512, vocab_only=True, verbose=False)
    text, count = gemma.prompt_of(counter, args.prompt_tokens)
    gemma.bench_kiln(args.bin_dir, model, text, 2, 1, count)  # compile before timing
    machine.measure(args.bin_dir, args.threads)
    name = "Mamba 1.4B" if args.arch == "mamba" else "RWKV-6 1.6B"
    print(f"{name}-shaped ({args.blocks} blocks) {args.type}, random weights, prompt "
          f"{count} tokens, {args.gen} generated, best of {args.repeat} runs")
    print(f"{'threads':>7} {'engine':>9} {'prefill tok/s':>14} {'decode tok/s':>13}")
    for threads in args.threads:
        rows = {}
        for engine, run in (("kiln", lambda: gemma.bench_kiln(args.bin_dir, model, text, args.gen,
                                                                threads, count)),
                            ("llama.cpp", lambda: gemma.bench_llama(model, text, args.gen,
                                                                    threads, count))):
            results = [run() for _ in range(args.repeat)]
            rows[engine] = (max(r[0] for r in results), max(r[1] for r in results))
            print(f"{threads:>7} {engine:>9} {rows[engine][0]:>14.2f} {rows[engine][1]:>13.2f}")
        k, l = rows["kiln"], rows["llama.cpp"]
        print(f"{threads:>7} {'ratio':>9} {k[0] / l[0]:>14.2f} {k[1] / l[1]:>13.2f}")


if __name__ == "__main__":
    main()
