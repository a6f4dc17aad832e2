"""Drives kiln-embedder-c-api-test (EmbedderApiTest.c) on all-MiniLM-L6-v2: compiles
the model with kiln-compile (batch 4, 32 tokens), writes a module without "embed"
(kiln-make-test-artifact), runs the C test, then checks the vectors it wrote against
the numpy BERT of test/e2e/minilm_vs_numpy.py on token ids from the `tokenizers`
library (truncation at 32 and at 8 tokens), so the API's tokenization options,
padding, masks and batching are judged by code that shares none of them.
Skipped (exit 77) only when the model is not installed.

usage: embedder_api_test.py BIN_DIR TEST_KERNELS.so WORK_DIR
"""
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import minilm_vs_numpy as reference  # noqa: E402  (also puts test/models on the path)
import kiln_models  # noqa: E402

SKIP = 77


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    bin_dir, kernels, work = sys.argv[1:]
    try:
        directory = str(kiln_models.minilm_dir())
    except kiln_models.ModelNotInstalled as missing:
        print(f"SKIP all-MiniLM-L6-v2 is not installed: {missing}")
        return SKIP
    os.makedirs(work, exist_ok=True)
    artifact = os.path.join(work, "minilm-4x32.kiln")
    if not reference.compile_model(bin_dir, directory, artifact, 4, 32):
        return 1
    no_embed = os.path.join(work, "add.kiln")
    subprocess.run([os.path.join(bin_dir, "kiln-make-test-artifact"), kernels, no_embed],
                   check=True)
    prefix = os.path.join(work, "embeddings")
    ran = subprocess.run([os.path.join(bin_dir, "kiln-embedder-c-api-test"), artifact,
                          directory, no_embed, prefix])
    if ran.returncode != 0:
        print(f"FAIL: kiln-embedder-c-api-test exited with {ran.returncode}")
        return 1

    with open(prefix + ".txt", encoding="utf-8") as f:
        texts = f.read().split("\n")[:-1]
    got = np.fromfile(prefix + ".f32", dtype=np.float32).astype(np.float64)
    got = got.reshape(2, len(texts), -1)
    from tokenizers import Tokenizer

    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    weights = reference.read_safetensors(os.path.join(directory, "model.safetensors"))
    ok = True
    for rows, max_length in zip(got, (32, 8)):
        tokenizer = Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_length)
        expected = [reference.bert_embedding(weights, config, np.array(e.ids),
                                             np.array(e.type_ids))
                    for e in tokenizer.encode_batch(texts)]
        ok = reference.compare(f"kiln_embedder_embed, max length {max_length}", rows,
                               expected)[0] and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
