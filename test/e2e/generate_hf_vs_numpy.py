"""kiln-generate on a Hugging Face model directory: a tiny random-weight
LlamaForCausalLM (config.json + model.safetensors, written by llama_vs_numpy.HfModel)
with a byte-level BPE tokenizer.json trained here by the `tokenizers` library. kiln
compiles the directory into its cache, tokenizes the prompt with its tokenizer.json
loader and decodes greedily over the KV cache; the ids must equal the `tokenizers`
library's for the prompt and numpy's greedy continuation (full recomputation with the
llama_vs_numpy reference), token for token. F32 weights: no ties to excuse.

usage: generate_hf_vs_numpy.py BIN_DIR WORK_DIR
"""
import json
import os
import subprocess
import sys

import numpy as np
from tokenizers import processors

import llama_vs_numpy as reference

PROMPT = "the quick brown fox jumps over"
NEW_TOKENS = 10
CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a journey of a thousand miles begins with a single step",
    "to be or not to be that is the question",
    "all that glitters is not gold and all that wander are not lost",
] * 20


def train_tokenizer(path):
    tokenizer = reference.train_byte_level_bpe(CORPUS, 300)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tokenizer.token_to_id("<s>"))])
    tokenizer.save(path)
    return tokenizer


def main():
    bin_dir, work = sys.argv[1], sys.argv[2]
    model_dir = os.path.join(work, "hf-llama")
    os.makedirs(model_dir, exist_ok=True)
    tokenizer = train_tokenizer(os.path.join(model_dir, "tokenizer.json"))
    c = reference.Config("hf_generate", hf=1, vocab=tokenizer.get_vocab_size(), dim=64, heads=4,
                         kv_heads=2, ffn=96, blocks=2, context=64)
    model = reference.HfModel(c, model_dir)
    model.write()
    with open(os.path.join(model_dir, "config.json")) as f:
        assert json.load(f)["vocab_size"] == c.vocab

    prompt = tokenizer.encode(PROMPT).ids
    tokens = list(prompt)
    for _ in range(NEW_TOKENS):
        logits = reference.forward(c, model.weights, np.array(tokens),
                                   np.arange(len(tokens), dtype=np.float64))
        tokens.append(int(np.argmax(logits[-1])))
    expected = tokens[len(prompt):]

    stats_path = os.path.join(work, "stats.json")
    ran = subprocess.run([os.path.join(bin_dir, "kiln-generate"), model_dir, "-p", PROMPT,
                          "-n", str(NEW_TOKENS), "--temp", "0", "--repeat-penalty", "1",
                          "--ctx", "32", "--batch", "4", "--cache-dir",
                          os.path.join(work, "cache"), "--stats-json", stats_path],
                         capture_output=True)
    if ran.returncode != 0:
        print(f"FAIL kiln-generate exited {ran.returncode}:\n{ran.stdout!r}{ran.stderr!r}")
        return 1
    with open(stats_path) as f:
        stats = json.load(f)
    ok = stats["prompt_tokens"] == len(prompt) and stats["tokens"] == expected
    print(f"{'PASS' if ok else 'FAIL'} prompt {stats['prompt_tokens']} tokens (tokenizers: "
          f"{len(prompt)}); kiln {stats['tokens']}, numpy {expected}")
    expected_text = tokenizer.decode(expected)
    # Bytes, not text: the continuation may hold a carriage return or invalid UTF-8.
    shown = ran.stdout[len(PROMPT):].removesuffix(b"\n").decode("utf-8", errors="replace")
    text_ok = shown == expected_text
    print(f"{'PASS' if text_ok else 'FAIL'} streamed text {shown!r} (tokenizers decodes "
          f"{expected_text!r})")
    return 0 if ok and text_ok else 1


if __name__ == "__main__":
    sys.exit(main())
