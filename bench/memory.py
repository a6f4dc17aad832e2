"""Peak resident memory of generating text with Gemma 3 270M (Q4_K_M GGUF, installed by
scripts/setup.sh): kiln-generate against llama.cpp (llama-cpp-python from the test
venv), each in a process of its own, at several context lengths (--ctx, the KV cache's
positions) and prompt lengths (--runs CTX:PROMPT_TOKENS ...), the same prompt and number
of generated tokens for both, 2 threads. Pages neither touches are not resident, so a
short prompt in a long context shows what each allocates and touches up front, and a
long one what the caches cost once filled.

The figure is the process's peak RSS (ru_maxrss of the child, from wait4), so it counts
the weights' pages as both touch them (kiln reads the artifact, llama.cpp maps the
GGUF), the KV caches, activations, code and the Python interpreter around llama.cpp
(measured alone too: "python + llama_cpp import", so its share can be subtracted).
kiln's artifact is compiled before anything is measured (kiln-generate's cache), so
the compiler's memory is not in its figure.

kiln: sliding-window layers keep ring-buffer caches of window + batch - 1 rows (the
default), and with --full-window-caches ctx rows; its caches hold f32.
llama.cpp: its defaults (f16 caches; llama-cpp-python's swa_full, a full-size cache for
the sliding layers too), and swa_full=False (its own window + batch ring).

usage: python bench/memory.py [--runs 4096:3000 32768:128] [--gen 32]
       [--model OTHER.gguf]
       (run with the test venv's python: "$(bash scripts/setup.sh --print-venv)/bin/python")
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "models"))
import kiln_models  # noqa: E402
import machine  # noqa: E402  (bench/machine.py, beside this file)

from gemma import prompt_of  # noqa: E402  (bench/gemma.py)

THREADS = 2
BATCH = 64

# Run as a child: load the model, evaluate the prompt, generate greedily.
LLAMA_CHILD = r"""
import sys, numpy as np
model, ctx, gen, batch, threads, swa_full, text = sys.argv[1:8]
if model == "-":
    import llama_cpp  # the interpreter and the library alone
    sys.exit(0)
from llama_cpp import Llama
kwargs = {} if swa_full == "default" else {"swa_full": swa_full == "full"}
llm = Llama(model_path=model, n_ctx=int(ctx), n_batch=int(batch), n_threads=int(threads),
            n_threads_batch=int(threads), verbose=False, **kwargs)
tokens = llm.tokenize(text.encode(), add_bos=True)
llm.eval(tokens)
for _ in range(int(gen)):
    logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
    llm.eval([int(np.argmax(logits))])
"""


def peak_rss_mib(command):
    """Runs `command`; its peak resident set in MiB (ru_maxrss, KiB on Linux)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({process.returncode}):\n{stderr}")
    return usage.ru_maxrss / 1024


def kiln_command(bin_dir, model, text, gen, ctx, stats, *extra):
    return [os.path.join(bin_dir, "kiln-generate"), model, "-p", text, "-n", str(gen),
            "--ctx", str(ctx), "--batch", str(BATCH), "--temp", "0", "--threads",
            str(THREADS), "--stats-json", stats, *extra]


def llama_command(model, text, gen, ctx, swa_full):
    return [sys.executable, "-c", LLAMA_CHILD, model, str(ctx), str(gen), str(BATCH),
            str(THREADS), swa_full, text]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", default=["4096:3000", "32768:128"],
                        help="CTX:PROMPT_TOKENS pairs")
    parser.add_argument("--gen", type=int, default=32)
    parser.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "bin"))
    parser.add_argument("--model", help="another GGUF (default: Gemma 3 270M Q4_K_M)")
    args = parser.parse_args()
    model = args.model or str(kiln_models.gemma_gguf())
    label = os.path.basename(args.model) if args.model else "Gemma 3 270M Q4_K_M"
    from llama_cpp import Llama
    counter = Llama(model_path=model, n_ctx=512, vocab_only=True, verbose=False)
    machine.measure(args.bin_dir, [THREADS], megabytes=256, repeat=1)  # names the CPU
    print(f"{label}, prompts in batches of {BATCH}, {args.gen} generated, {THREADS} threads; "
          f"peak RSS (MiB) of each process; kiln state = its KV caches' bytes")
    base = peak_rss_mib(llama_command("-", "", 0, 0, "default"))
    print(f"python + llama_cpp import alone: {base:.0f} MiB (in both llama.cpp columns)")
    print(f"{'ctx':>6} {'prompt':>6} {'kiln':>6} {'kiln full':>9} {'llama.cpp':>9} "
          f"{'llama.cpp ring':>14} {'kiln/llama.cpp':>14} {'kiln state':>10}")
    with tempfile.TemporaryDirectory() as work:
        stats = os.path.join(work, "stats.json")
        for run in args.runs:
            ctx, prompt_tokens = (int(x) for x in run.split(":"))
            text, count = prompt_of(counter, prompt_tokens)
            figures = {}
            for name, extra in (("kiln", []), ("kiln full", ["--full-window-caches"])):
                # Compile into kiln-generate's cache first: the compiler's peak is not
                # the generator's.
                subprocess.run(kiln_command(args.bin_dir, model, text, 1, ctx, stats, *extra),
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                figures[name] = peak_rss_mib(kiln_command(args.bin_dir, model, text, args.gen,
                                                          ctx, stats, *extra))
            state = kiln_state_mib(args.bin_dir, model, ctx)
            figures["llama.cpp"] = peak_rss_mib(llama_command(model, text, args.gen, ctx,
                                                              "default"))
            figures["llama.cpp ring"] = peak_rss_mib(llama_command(model, text, args.gen, ctx,
                                                                   "ring"))
            print(f"{ctx:>6} {count:>6} {figures['kiln']:>6.0f} {figures['kiln full']:>9.0f} "
                  f"{figures['llama.cpp']:>9.0f} {figures['llama.cpp ring']:>14.0f} "
                  f"{figures['kiln'] / figures['llama.cpp']:>14.2f} {state:>10.1f}")


def kiln_state_mib(bin_dir, model, ctx):
    """The KV caches' bytes (state_bytes of kiln-compile --report-json) in MiB, as
    kiln-generate compiles the model."""
    with tempfile.TemporaryDirectory() as work:
        report = os.path.join(work, "report.json")
        subprocess.run([os.path.join(bin_dir, "kiln-compile"), model, "--kv-cache", "--ctx",
                        str(ctx), "--seq-len", str(BATCH), "-o", os.path.join(work, "m.kiln"),
                        "--report-json", report], check=True, capture_output=True)
        with open(report) as f:
            return json.load(f)["state_bytes"] / 2**20


if __name__ == "__main__":
    main()
