"""Quantized against float, kiln against itself: the same float model compiled as it is
and with kiln-compile --quantize=int8 / int4, timed in one run on one machine.

1. all-MiniLM-L6-v2 (installed by setup): @embed sentences/s at each --minilm-shapes
   batch x sequence length, float vs --quantize=int8 (every product's weight, the
   embedding table too: --quantize-keep-float=none, the issue's 0.30x-bytes setting),
   through the C API (test/e2e/kiln_session.py), best of --repeat timed loops.
2. A float language model (--llama FILE.gguf, F32/F16 weights; default: Gemma 3 270M's
   F32 copy, made from the installed Q4_K_M file as the e2e tests make it): prefill and
   decode tokens/s of kiln-generate on artifacts compiled float, int8 and int4 (the
   default keep-float rule: embeddings and the output head stay float; "all": those
   too, --quantize-keep-float=none), best of --repeat.

usage: python bench/quantized.py [--threads 2] [--repeat 3] [--llama F16.gguf]
       [--minilm-shapes 1x16 1x128 32x128] [--skip-minilm] [--skip-llama]
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
sys.path.insert(0, os.path.join(ROOT, "test", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "test", "models"))
import kiln_models  # noqa: E402
import kiln_session  # noqa: E402
import machine  # noqa: E402  (bench/machine.py, beside this file)
from gguf_f32_copy import f32_copy  # noqa: E402

from gemma import prompt_of  # noqa: E402  (bench/gemma.py)
from minilm import inputs  # noqa: E402  (bench/minilm.py)

LLAMA_VARIANTS = (("float", []), ("int8", ["--quantize=int8"]), ("int4", ["--quantize=int4"]),
                  ("int8 all", ["--quantize=int8", "--quantize-keep-float=none"]),
                  ("int4 all", ["--quantize=int4", "--quantize-keep-float=none"]))


def compile_model(bin_dir, model, artifact, args):
    """Compiles `model` into `artifact`; (seconds, weight bytes from --report-json)."""
    report = artifact + ".json"
    start = time.perf_counter()
    subprocess.run([os.path.join(bin_dir, "kiln-compile"), model, "-o", artifact,
                    "--report-json", report, *args], check=True, capture_output=True)
    seconds = time.perf_counter() - start
    with open(report) as f:
        return seconds, json.load(f)["weight_bytes_after"]


def bench_minilm(bin_dir, threads, repeat, shapes, work):
    directory = str(kiln_models.minilm_dir())
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    runtime = kiln_session.Runtime(os.path.join(bin_dir, "..", "lib", "libkiln_runtime.so"),
                                   threads=threads)
    rng = np.random.default_rng(0)
    print(f"all-MiniLM-L6-v2 @embed, {threads} threads, best of {repeat} loops of each, "
          f"alternating; int8 = "
          f"--quantize=int8 --quantize-keep-float=none")
    print(f"{'batch x seq':>11} {'float sent/s':>13} {'int8 sent/s':>12} {'int8/float':>10} "
          f"{'min cosine':>11} {'weights MB float -> int8':>25}")
    for shape in shapes:
        batch, seq = (int(x) for x in shape.split("x"))
        ids, mask, types = inputs(rng, batch, seq, config["vocab_size"])
        runs, outputs, sizes = [], [], []
        for name, extra in (("float", []),
                            ("int8", ["--quantize=int8", "--quantize-keep-float=none"])):
            args = ["--batch", str(batch), "--seq-len", str(seq), *extra]
            artifact = os.path.join(work, f"minilm-{shape}-{name}.kiln")
            sizes.append(compile_model(bin_dir, directory, artifact, args)[1])
            session = runtime.load(artifact).session("embed")
            run = (lambda session: lambda: session.run(
                {0: (np.float32, (batch, config["hidden_size"]))}, input_ids=ids,
                attention_mask=mask, token_type_ids=types)[0])(session)
            outputs.append(run())
            runs.append(run)
        # The two alternate, loop by loop, so that the machine's drifts (a shared VM's
        # bandwidth moves within a minute) touch both alike; the best loop of each counts.
        loops = max(3, 64 // batch)
        rates = [0.0, 0.0]
        for _ in range(repeat):
            for i, run in enumerate(runs):
                start = time.perf_counter()
                for _ in range(loops):
                    run()
                rates[i] = max(rates[i], batch * loops / (time.perf_counter() - start))
        a, b = outputs
        cosine = float(np.min(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) *
                                                  np.linalg.norm(b, axis=1))))
        print(f"{shape:>11} {rates[0]:>13.1f} {rates[1]:>12.1f} {rates[1] / rates[0]:>10.2f} "
              f"{cosine:>11.5f} {sizes[0] / 1e6:>12.1f} -> {sizes[1] / 1e6:.1f}")


def bench_llama(bin_dir, model, threads, repeat, gen, prompt_tokens, work):
    from llama_cpp import Llama
    counter = Llama(model_path=model, n_ctx=512, vocab_only=True, verbose=False)
    text, count = prompt_of(counter, prompt_tokens)
    del counter
    print(f"{os.path.basename(model)}: kiln-generate, prompt {count} tokens (one prefill "
          f"pass), {gen} generated, {threads} threads, best of {repeat}")
    print(f"{'weights':>8} {'MB':>8} {'compile s':>9} {'prefill tok/s':>14} {'decode tok/s':>13} "
          f"{'vs float':>14}")
    base = None
    for name, extra in LLAMA_VARIANTS:
        args = ["--kv-cache", "--ctx", "256", "--seq-len", str(count), *extra]
        artifact = os.path.join(work, f"llama-{name.replace(' ', '-')}.kiln")
        seconds, size = compile_model(bin_dir, model, artifact, args)
        best = (0.0, 0.0)
        stats = os.path.join(work, "stats.json")
        for _ in range(repeat):
            subprocess.run([os.path.join(bin_dir, "kiln-generate"), artifact, "--vocab", model,
                            "-p", text, "-n", str(gen), "--ctx", "256", "--batch", str(count),
                            "--temp", "0", "--threads", str(threads), "--stats-json", stats],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(stats) as f:
                s = json.load(f)
            best = (max(best[0], s["prompt_tokens_per_second"]),
                    max(best[1], s["generation_tokens_per_second"]))
        base = base or best
        print(f"{name:>8} {size / 1e6:>8.1f} {seconds:>9.1f} {best[0]:>14.1f} {best[1]:>13.1f} "
              f"{best[0] / base[0]:>6.2f} / {best[1] / base[1]:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--gen", type=int, default=32)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--llama", help="a float GGUF (default: Gemma 3 270M's F32 copy)")
    parser.add_argument("--minilm-shapes", nargs="+", default=["1x16", "1x128", "32x128"])
    parser.add_argument("--skip-minilm", action="store_true")
    parser.add_argument("--skip-llama", action="store_true")
    parser.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "bin"))
    args = parser.parse_args()
    machine.measure(args.bin_dir, [args.threads], megabytes=256, repeat=1)  # names the CPU
    with tempfile.TemporaryDirectory() as work:
        if not args.skip_minilm:
            bench_minilm(args.bin_dir, args.threads, args.repeat, args.minilm_shapes, work)
        if not args.skip_llama:
            model = args.llama or f32_copy(str(kiln_models.gemma_gguf()),
                                           str(kiln_models.models_src_dir() /
                                               "gemma-3-270m-f32.gguf"))
            bench_llama(args.bin_dir, model, args.threads, args.repeat, args.gen,
                        args.prompt_tokens, work)


if __name__ == "__main__":
    main()
