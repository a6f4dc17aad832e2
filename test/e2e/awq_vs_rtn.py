"""AWQ (kiln-compile --quantize=awq) against plain round-to-nearest int4 at the same group
size (--quantize=int4, q4_0's blocks of 32), on a Hugging Face LlamaForCausalLM whose
activations have outlier input channels as real models' do: four of the 128 channels of
every RMSNorm scale are 40x the others (1.0 +- 0.1), so the products after each norm
see a few channels tens of times larger than the rest. The tokenizer is a byte-level
BPE trained here with the `tokenizers` library on the calibration text.

AWQ searches its scales on --calibration-text (tokenized by kiln with the model's
tokenizer.json); perplexity is measured on a held-out text (different sentences),
tokenized here, against an f64 numpy forward pass of the float weights
(llama_vs_numpy.forward), as the accuracy report computes it (exp of the mean negative
log-likelihood of each next token). The bar, AWQ's whole point (issue 17): AWQ's
perplexity closer to float than RTN's, and its KL divergence from float smaller.

The bar can fail: --awq-grid=0 (alpha = 0 only: every scale 1) must give RTN's logits
bit for bit, and so fail it; the test checks both. The same bar holds with zero points
(awq:32:zp against int4:32:zp, q4_1).

usage: awq_vs_rtn.py BIN_DIR WORK_DIR
"""
import json
import os
import subprocess
import sys

import numpy as np

import llama_vs_numpy as reference
from safetensors_files import write_safetensors

SEQ_LEN = 64
OUTLIERS = [5, 37, 70, 101]
OUTLIER_SCALE = 40.0

SUBJECTS = ["the miller", "a young fox", "the old sailor", "my neighbour", "the river",
            "a tired horse", "the baker", "the north wind", "a small bird", "the teacher"]
VERBS = ["carried", "watched", "painted", "followed", "forgot", "found", "sold", "mended",
         "opened", "counted"]
OBJECTS = ["a basket of apples", "the long road", "seven silver coins", "the broken gate",
           "an empty boat", "the morning light", "a bundle of letters", "the stone bridge",
           "a loaf of bread", "the quiet garden"]
ENDINGS = ["before the rain came", "while the town slept", "and then went home",
           "without a single word", "near the edge of the forest", "at the end of summer"]


def sentences(seed, count):
    rng = np.random.default_rng(seed)
    pick = lambda words: words[rng.integers(len(words))]
    return [f"{pick(SUBJECTS)} {pick(VERBS)} {pick(OBJECTS)} {pick(ENDINGS)}."
            for _ in range(count)]


def train_tokenizer(path, text):
    tokenizer = reference.train_byte_level_bpe(text, 320)
    tokenizer.save(path)
    return tokenizer


class OutlierModel(reference.HfModel):
    """HfModel whose block norms (input_layernorm, post_attention_layernorm) scale a few
    fixed channels 40x, as the residual stream's outlier features do in real llamas."""

    def add(self, name, values):
        if name.endswith(("attn_norm.weight", "ffn_norm.weight")):
            values = values.copy()
            values[OUTLIERS] *= OUTLIER_SCALE
        super().add(name, values)


def train_head(c, model, ids):
    """Trains the output head (kept float by --quantize) on the calibration text: a
    softmax regression of each next token on the float model's final normalized hidden
    state, by gradient descent in numpy. The blocks stay random, but the model now
    predicts the text (its perplexity is far below the vocabulary's size), so rounding
    errors in the blocks make its predictions worse, as they do in a trained model,
    rather than moving a random model's perplexity either way."""
    weights = dict(model.weights, **{"output.weight": np.eye(c.dim)})
    runs = [ids[i:i + SEQ_LEN] for i in range(0, len(ids) - SEQ_LEN + 1, SEQ_LEN)]
    positions = np.arange(SEQ_LEN, dtype=np.float64)
    hidden = np.concatenate([reference.forward(c, weights, t, positions)[:-1] for t in runs])
    targets = np.concatenate([t[1:] for t in runs])
    head = np.zeros((c.vocab, c.dim))
    for _ in range(300):
        p = np.exp(log_softmax(hidden @ head.T))
        p[np.arange(len(targets)), targets] -= 1
        head -= 2.0 * (p.T @ hidden) / len(targets)
    head = head.astype(np.float32)
    model.stored["lm_head.weight"] = ("F32", head)
    model.weights["output.weight"] = head.astype(np.float64)
    write_safetensors(os.path.join(model.path, "model.safetensors"), model.stored)


def log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def next_token_nll(logits, tokens):
    """Negative log-likelihoods of each run's next tokens (as the accuracy report)."""
    return np.concatenate([-log_softmax(l)[np.arange(SEQ_LEN - 1), t[1:]]
                           for l, t in zip(logits, tokens)])


def compile_model(bin_dir, model_dir, artifact, extra):
    report = artifact + ".json"
    ran = subprocess.run([os.path.join(bin_dir, "kiln-compile"), model_dir, "-o", artifact,
                          "--seq-len", str(SEQ_LEN), "--activations=f32", "--tune=off",
                          "--report-json", report, *extra], capture_output=True, text=True)
    if ran.returncode != 0:
        print(f"FAIL kiln-compile {' '.join(extra)}:\n{ran.stderr}")
        return None
    print(f"kiln-compile {' '.join(extra)}:\n{ran.stderr.strip()}")
    with open(report) as f:
        return json.load(f)


def run_logits(bin_dir, artifact, work, runs):
    out = []
    for i, tokens in enumerate(runs):
        inputs = os.path.join(work, f"heldout{i}.tokens.npy")
        positions = os.path.join(work, f"heldout{i}.positions.npy")
        np.save(inputs, tokens.astype(np.int32))
        np.save(positions, np.arange(SEQ_LEN, dtype=np.int64))
        logits = os.path.join(work, "logits.npy")
        ran = subprocess.run([os.path.join(bin_dir, "kiln-run"), artifact, "--quiet",
                              "--input", f"tokens={inputs}", "--input", f"positions={positions}",
                              "--output", f"logits={logits}"], capture_output=True, text=True)
        if ran.returncode != 0:
            print(f"FAIL kiln-run {artifact}:\n{ran.stdout}{ran.stderr}")
            return None
        out.append(np.load(logits).astype(np.float64))
    return out


def beats(label, got, rtn, reference_nll, reference_logp):
    """AWQ's bar: perplexity closer to the float reference's than RTN's, and a smaller
    KL divergence from it."""
    ppl_ref = float(np.exp(reference_nll.mean()))
    ppl = {name: float(np.exp(nll.mean())) for name, (nll, _) in (("got", got), ("rtn", rtn))}
    kl = {name: float((np.exp(reference_logp) * (reference_logp - logp)).sum(-1).mean())
          for name, (_, logp) in (("got", got), ("rtn", rtn))}
    ok = abs(ppl["got"] - ppl_ref) < abs(ppl["rtn"] - ppl_ref) and kl["got"] < kl["rtn"]
    print(f"{label}: perplexity float {ppl_ref:.4f}, RTN int4 {ppl['rtn']:.4f} "
          f"(|diff| {abs(ppl['rtn'] - ppl_ref):.4f}, KL {kl['rtn']:.5f}), this "
          f"{ppl['got']:.4f} (|diff| {abs(ppl['got'] - ppl_ref):.4f}, KL {kl['got']:.5f})")
    return ok


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    bin_dir, work = sys.argv[1], sys.argv[2]
    model_dir = os.path.join(work, "outlier-llama")
    os.makedirs(model_dir, exist_ok=True)
    calibration, heldout = sentences(1, 200), sentences(2, 200)
    tokenizer = train_tokenizer(os.path.join(model_dir, "tokenizer.json"), calibration)
    calibration_path = os.path.join(work, "calibration.txt")
    with open(calibration_path, "w") as f:
        f.write(" ".join(calibration))
    c = reference.Config("awq", hf=1, vocab=tokenizer.get_vocab_size(), dim=128, heads=4,
                         kv_heads=2, ffn=256, blocks=2, context=SEQ_LEN)
    model = OutlierModel(c, model_dir)
    model.write()
    train_head(c, model, np.array(tokenizer.encode(" ".join(calibration)).ids))

    ids = np.array(tokenizer.encode(" ".join(heldout)).ids)
    runs = [ids[i:i + SEQ_LEN] for i in range(0, len(ids) - SEQ_LEN + 1, SEQ_LEN)][:8]
    positions = np.arange(SEQ_LEN, dtype=np.float64)
    expected = [reference.forward(c, model.weights, t, positions) for t in runs]
    reference_logp = np.concatenate([log_softmax(l) for l in expected])
    reference_nll = next_token_nll(expected, runs)

    variants = {"float": [], "rtn": ["--quantize=int4:32"],
                "awq": ["--quantize=awq:32", "--calibration-text", calibration_path],
                "awq-grid-0": ["--quantize=awq:32", "--calibration-text", calibration_path,
                               "--awq-grid=0"],
                "rtn-zp": ["--quantize=int4:32:zp"],
                "awq-zp": ["--quantize=awq:32:zp", "--calibration-text", calibration_path]}
    results = {}
    for name, extra in variants.items():
        artifact = os.path.join(work, f"{name}.kiln")
        if compile_model(bin_dir, model_dir, artifact, extra) is None:
            return 1
        logits = run_logits(bin_dir, artifact, work, runs)
        if logits is None:
            return 1
        results[name] = (next_token_nll(logits, runs),
                         np.concatenate([log_softmax(l) for l in logits]), logits)

    ok = True
    # kiln's float artifact is the float model (the same bound as llama_vs_numpy's),
    # so the reference's perplexity is the float perplexity kiln would report.
    scale = max(np.abs(e).max() for e in expected)
    error = max(np.abs(g - e).max() for g, e in zip(results["float"][2], expected)) / scale
    ok &= error <= reference.RTOL
    print(f"{'PASS' if error <= reference.RTOL else 'FAIL'} float artifact vs numpy f64: max "
          f"|error| {error:.2g} of max |logit| (bound {reference.RTOL}); {len(runs)} held-out "
          f"runs of {SEQ_LEN} tokens")
    awq_ok = beats("awq int4", results["awq"][:2], results["rtn"][:2], reference_nll, reference_logp)
    print(f"{'PASS' if awq_ok else 'FAIL'} AWQ int4 closer to float than RTN int4")
    ok &= awq_ok
    # With zero points (q4_1) on both sides.
    zp_ok = beats("awq:32:zp int4", results["awq-zp"][:2], results["rtn-zp"][:2], reference_nll,
                  reference_logp)
    print(f"{'PASS' if zp_ok else 'FAIL'} AWQ with zero points closer to float than RTN with "
          f"zero points")
    ok &= zp_ok
    # Scaling disabled: exactly RTN, so the bar above is the scales' doing.
    same = all(np.array_equal(a, b) for a, b in zip(results["awq-grid-0"][2], results["rtn"][2]))
    off_fails = not beats("awq --awq-grid=0", results["awq-grid-0"][:2], results["rtn"][:2],
                          reference_nll, reference_logp)
    print(f"{'PASS' if same and off_fails else 'FAIL'} --awq-grid=0 gives RTN's logits bit "
          f"for bit ({same}) and fails the bar ({off_fails})")
    ok &= same and off_fails
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
