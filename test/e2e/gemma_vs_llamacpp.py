"""Gemma 3 270M (the real Q4_K_M GGUF that setup installs) in kiln against llama.cpp
(llama-cpp-python, same file, same machine):

1. Greedy continuations: kiln-generate --temp 0 (KV cache, batched prefill) gives 32
   tokens for each prompt; llama.cpp's greedy tokens from the same prompt must be the
   same, token for token. Where they diverge, llama.cpp's top-2 logit margin at that
   step must be below TIE_MARGIN (a near-tie that the two engines' different rounding
   may break either way: llama.cpp quantizes activations to 8 bits inside its matmuls,
   kiln keeps them in f32); the test prints the margin.
2. Next-token logits at every position of a 256-token text (kiln's full-sequence @main
   vs llama.cpp's logits_all, llama.cpp with an f32 KV cache, its most exact setting):
   the top-1 token must agree wherever llama.cpp's own top-2 margin is at least
   DECIDED_MARGIN, and overall in at least TOP1_AGREEMENT of the positions; the mean
   KL(llama.cpp || kiln) is reported and bounded by KL_LIMIT. Why not 99% overall:
   llama.cpp rounds the activations to 8 bits inside every quantized matmul, kiln does
   not; on this text kiln's logits equal an f64 numpy forward pass over the same
   dequantized weights to ~1e-4, while llama.cpp's differ from it by up to ~4, which
   flips the argmax at near-ties (seen: every disagreement at a margin <= 0.25).
3. Determinism: kiln-generate with a seed and temperature twice gives identical bytes.

usage: gemma_vs_llamacpp.py BIN_DIR WORK_DIR
Exits 77 (ctest SKIP) with the reason when the model or llama_cpp is not installed.
"""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
import kiln_models  # noqa: E402

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n",
    "Once upon a time, in a small village,",
    "The three primary colors are",
    "Water boils at a temperature of",
    "<start_of_turn>user\nWhat is the tallest mountain?<end_of_turn>\n<start_of_turn>model\n",
]
NEW_TOKENS = 32
TIE_MARGIN = 0.3
TOP1_AGREEMENT = 0.97
DECIDED_MARGIN = 0.5
KL_LIMIT = 0.01
CTX = 128

TEXT = (
    "The history of the printing press begins in the fifteenth century, when Johannes "
    "Gutenberg combined movable metal type, oil-based ink and a screw press adapted from "
    "wine making. Before him, books in Europe were copied by hand, which made them rare "
    "and expensive; a single Bible could take a scribe more than a year. Gutenberg's "
    "workshop in Mainz produced about 180 copies of the Bible around 1455, and within "
    "fifty years presses were operating in more than two hundred cities. The spread of "
    "printed books lowered their price, standardized spelling and grammar, and helped "
    "ideas travel faster than ever before. Scientists could share results with "
    "colleagues far away, reformers distributed pamphlets by the thousands, and ordinary "
    "people began to read for themselves. Historians often describe the press as one of "
    "the inventions that shaped the modern world, alongside the compass and gunpowder. "
    "Today, digital publishing continues the same story: the cost of copying a text has "
    "fallen to almost nothing, and the challenge has shifted from producing words to "
    "finding the ones worth reading. Libraries, archives and search engines now play the "
    "role that monasteries once did, preserving and organizing knowledge for the next "
    "generation of readers, writers and thinkers around the world. Whether the next "
    "revolution in reading will be as large as the one that began in Mainz is a question "
    "that only future historians will be able to answer with any confidence."
)


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(77)


def kiln_generate(bin_dir, model, prompt, *extra):
    stats = os.path.join(WORK, "stats.json")
    ran = subprocess.run([os.path.join(bin_dir, "kiln-generate"), model, "-p", prompt,
                          "-n", str(NEW_TOKENS), "--ctx", str(CTX), "--batch", "16",
                          "--stats-json", stats, *extra], capture_output=True)
    if ran.returncode != 0:
        raise RuntimeError(f"kiln-generate failed:\n{ran.stderr.decode(errors='replace')}")
    with open(stats) as f:
        return json.load(f), ran.stdout


def llama_greedy(llm, prompt):
    """llama.cpp's greedy continuation and its top-2 margin at each step."""
    llm.reset()
    tokens = llm.tokenize(prompt.encode(), add_bos=True, special=True)
    llm.eval(tokens)
    out, margins = [], []
    for _ in range(NEW_TOKENS):
        logits = np.array(llm.scores[llm.n_tokens - 1], np.float64)
        top = np.argsort(-logits)[:2]
        margins.append(float(logits[top[0]] - logits[top[1]]))
        token = int(top[0])
        if token == llm.token_eos():
            break
        out.append(token)
        llm.eval([token])
    return tokens, out, margins


def compare_greedy(bin_dir, model, llm):
    ok = True
    for prompt in PROMPTS:
        stats, _ = kiln_generate(bin_dir, model, prompt, "--temp", "0", "--repeat-penalty", "1")
        prompt_tokens, want, margins = llama_greedy(llm, prompt)
        got = stats["tokens"]
        if stats["prompt_tokens"] != len(prompt_tokens):
            print(f"FAIL {prompt!r}: kiln's prompt has {stats['prompt_tokens']} tokens, "
                  f"llama.cpp's {len(prompt_tokens)}")
            ok = False
            continue
        same = 0
        while same < min(len(got), len(want)) and got[same] == want[same]:
            same += 1
        if same == len(want) == len(got):
            print(f"PASS {prompt!r}: {same} identical greedy tokens "
                  f"(smallest top-2 margin {min(margins):.3f})")
            continue
        margin = margins[same] if same < len(margins) else float("inf")
        tie = margin < TIE_MARGIN
        ok = ok and tie
        print(f"{'PASS' if tie else 'FAIL'} {prompt!r}: identical for {same} tokens, then kiln "
              f"{got[same:same + 3]} vs llama.cpp {want[same:same + 3]}; llama.cpp's top-2 "
              f"margin there is {margin:.3f} ({'<' if tie else '>='} {TIE_MARGIN})")
    return ok


def exact_logits(model, tokens):
    from gguf import GGUFReader, quants
    import llama_vs_numpy as reference
    reader = GGUFReader(model)
    keys = {k: f.contents() for k, f in reader.fields.items() if k.startswith("gemma3.")}
    weights = {t.name: np.asarray(quants.dequantize(t.data, t.tensor_type), np.float64)
               .reshape([int(d) for d in reversed(t.shape)]) for t in reader.tensors}
    c = reference.Config(
        "gemma", arch="gemma3", vocab=weights["token_embd.weight"].shape[0],
        dim=keys["gemma3.embedding_length"], heads=keys["gemma3.attention.head_count"],
        kv_heads=keys["gemma3.attention.head_count_kv"],
        head_dim=keys["gemma3.attention.key_length"], ffn=keys["gemma3.feed_forward_length"],
        blocks=keys["gemma3.block_count"], context=keys["gemma3.context_length"], tied=True,
        freq_base=keys["gemma3.rope.freq_base"], window=keys["gemma3.attention.sliding_window"],
        eps=keys["gemma3.attention.layer_norm_rms_epsilon"])
    return reference.forward(c, weights, np.asarray(tokens), np.arange(len(tokens), dtype=np.float64))


def compare_logits(bin_dir, model, llm):
    tokens = llm.tokenize(TEXT.encode(), add_bos=True)[:256]
    n = len(tokens)
    if n < 256:
        raise RuntimeError(f"the text has only {n} tokens")
    llm.reset()
    llm.eval(tokens)
    want = np.array(llm.scores[:n], np.float64)

    artifact = os.path.join(WORK, "gemma-main-256.kiln")
    compiled = subprocess.run([os.path.join(bin_dir, "kiln-compile"), model, "--seq-len",
                               str(n), "-o", artifact], capture_output=True, text=True)
    if compiled.returncode != 0:
        raise RuntimeError(f"kiln-compile failed:\n{compiled.stderr}")
    np.save(os.path.join(WORK, "tokens.npy"), np.array(tokens, np.int32))
    np.save(os.path.join(WORK, "positions.npy"), np.arange(n, dtype=np.int64))
    out = os.path.join(WORK, "logits.npy")
    ran = subprocess.run([os.path.join(bin_dir, "kiln-run"), artifact, "--quiet",
                          "--input", f"tokens={os.path.join(WORK, 'tokens.npy')}",
                          "--input", f"positions={os.path.join(WORK, 'positions.npy')}",
                          "--output", f"logits={out}"], capture_output=True, text=True)
    if ran.returncode != 0:
        raise RuntimeError(f"kiln-run failed:\n{ran.stdout}{ran.stderr}")
    got = np.load(out).astype(np.float64)

    def log_softmax(x):
        x = x - x.max(-1, keepdims=True)
        return x - np.log(np.exp(x).sum(-1, keepdims=True))

    # The exact computation: an f64 numpy forward pass (test/e2e/llama_vs_numpy.py's,
    # written from the architecture's definition) over the weights as the gguf package
    # dequantizes them. kiln must match it; llama.cpp's distance to it is printed.
    exact = exact_logits(model, tokens)
    scale = np.abs(exact).max()
    kiln_error = np.abs(got - exact).max()
    kiln_exact = bool(np.array_equal(got.argmax(-1), exact.argmax(-1))) and kiln_error <= 1e-4 * scale
    print(f"{'PASS' if kiln_exact else 'FAIL'} kiln vs an f64 numpy forward pass: max |error| "
          f"{kiln_error:.2e} (<= {1e-4 * scale:.2e}), top-1 agreement "
          f"{np.mean(got.argmax(-1) == exact.argmax(-1)) * 100:.1f}% (must be 100%); llama.cpp vs "
          f"the same: max |error| {np.abs(want - exact).max():.3f}, top-1 agreement "
          f"{np.mean(want.argmax(-1) == exact.argmax(-1)) * 100:.1f}%")

    p, q = log_softmax(want), log_softmax(got)
    kl = (np.exp(p) * (p - q)).sum(-1)
    same = want.argmax(-1) == got.argmax(-1)
    ranked = np.sort(want, -1)
    margin = ranked[:, -1] - ranked[:, -2]
    decided = margin >= DECIDED_MARGIN
    agree = float(np.mean(same))
    ok = (kiln_exact and agree >= TOP1_AGREEMENT and bool(np.all(same[decided])) and
          kl.mean() <= KL_LIMIT)
    print(f"{'PASS' if ok else 'FAIL'} next-token logits over {n} positions: top-1 agreement "
          f"{agree * 100:.1f}% (>= {TOP1_AGREEMENT * 100:.0f}%); "
          f"{int(np.sum(same[decided]))} of {int(np.sum(decided))} positions with a top-2 "
          f"margin >= {DECIDED_MARGIN} agree (all must); llama.cpp's margins where they "
          f"differ: {np.round(margin[~same], 3).tolist()}; KL(llama.cpp || kiln) mean "
          f"{kl.mean():.2e} max {kl.max():.2e} (mean <= {KL_LIMIT}); max |logit difference| "
          f"{np.abs(want - got).max():.3f} of max |logit| {np.abs(want).max():.1f}")
    return ok


def check_determinism(bin_dir, model):
    args = ("--temp", "0.8", "--seed", "1234")
    first = kiln_generate(bin_dir, model, PROMPTS[2], *args)[1]
    second = kiln_generate(bin_dir, model, PROMPTS[2], *args)[1]
    ok = first == second
    print(f"{'PASS' if ok else 'FAIL'} two seeded runs (temperature 0.8, seed 1234) print "
          f"{'identical' if ok else 'different'} bytes ({len(first)} bytes)")
    return ok


def main():
    global WORK
    bin_dir, WORK = sys.argv[1], sys.argv[2]
    os.makedirs(WORK, exist_ok=True)
    try:
        model = str(kiln_models.gemma_gguf())
    except kiln_models.ModelNotInstalled as error:
        skip(str(error))
    try:
        from llama_cpp import Llama
    except ImportError as error:
        skip(f"llama_cpp is not installed in this venv ({error}); run scripts/setup.sh")
    # type_k/type_v 0 = GGML_TYPE_F32: no f16 rounding of the KV cache.
    llm = Llama(model_path=model, n_ctx=512, n_batch=512, logits_all=True, n_threads=2,
                type_k=0, type_v=0, verbose=False)
    results = [compare_greedy(bin_dir, model, llm), compare_logits(bin_dir, model, llm),
               check_determinism(bin_dir, model)]
    print("gemma vs llama.cpp: " + ("all passed" if all(results) else "FAILED"))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
