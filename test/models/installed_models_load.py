"""The real models installed by scripts/setup.sh are intact and load in the reference
tools other tests compare kiln against: llama.cpp (llama-cpp-python) runs the Gemma 3
GGUF; Hugging Face tokenizers and safetensors read all-MiniLM-L6-v2.

The oracles are the files themselves, never the tool under test: token ids are checked
against the vocabulary stored in the GGUF / in vocab.txt, tensor shapes against
config.json, the GGUF against its published SHA-256.
Run with the test venv's python: installed_models_load.py"""
import json
import sys
from pathlib import Path

import gguf
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kiln_models  # noqa: E402


def fail(message: str) -> None:
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def gguf_tokens(reader: gguf.GGUFReader) -> list[str]:
    field = reader.fields["tokenizer.ggml.tokens"]
    return [bytes(field.parts[index]).decode("utf-8") for index in field.data]


def gguf_scalar(reader: gguf.GGUFReader, key: str):
    field = reader.fields[key]
    return field.parts[field.data[0]][0]


def check_gemma() -> None:
    from llama_cpp import Llama

    path = kiln_models.gemma_gguf()
    if (digest := kiln_models.sha256_of(path)) != kiln_models.GEMMA_SHA256:
        fail(f"{path}: SHA-256 {digest}, expected {kiln_models.GEMMA_SHA256}")
    reader = gguf.GGUFReader(path)
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    if arch != "gemma3":
        fail(f"{path}: general.architecture is {arch!r}, expected 'gemma3'")
    tokens = gguf_tokens(reader)
    bos = int(gguf_scalar(reader, "tokenizer.ggml.bos_token_id"))

    llm = Llama(model_path=str(path), n_ctx=256, n_threads=2, logits_all=True, verbose=False)
    # llama.cpp adds BOS because the file sets tokenizer.ggml.add_bos_token; the ids must
    # spell the text in the file's own vocabulary (SentencePiece marks spaces with U+2581).
    ids = llm.tokenize(b"Hello world")
    if ids[0] != bos or [tokens[i] for i in ids[1:]] != ["Hello", "\u2581world"]:
        fail(f"tokenize(b'Hello world') = {ids} = {[tokens[i] for i in ids]}, "
             f"expected [<bos>={bos}, 'Hello', '\u2581world']")

    # Greedy decoding with the KV cache must pick, at every step, the argmax of the
    # logits that one full-sequence evaluation of the same tokens produces. Exact
    # equality of token ids: for this prompt the top two logits are at least 0.5 apart,
    # far above the ~1e-3 by which batched and one-token evaluation can differ.
    prompt = llm.tokenize(b"The capital of France is")
    generated = []
    for token in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
        generated.append(token)
        if len(generated) == 4:
            break
    llm.reset()
    llm.eval(prompt + generated[:-1])
    logits = np.asarray(llm.scores[:llm.n_tokens])
    if not np.isfinite(logits).all():
        fail("llama.cpp produced non-finite logits")
    argmax = logits[len(prompt) - 1:].argmax(axis=1).tolist()
    if argmax != generated:
        fail(f"greedy tokens {generated} differ from the full-sequence argmax {argmax}")
    text = llm.detokenize(generated).decode("utf-8", errors="replace")
    print(f"gemma: {path}: prompt {prompt} -> greedy {generated} {text!r}")


def check_minilm() -> None:
    from safetensors import safe_open
    from tokenizers import Tokenizer

    directory = kiln_models.minilm_dir()
    config = json.loads((directory / "config.json").read_text())
    vocab = (directory / "vocab.txt").read_text(encoding="utf-8").splitlines()
    if len(vocab) != config["vocab_size"]:
        fail(f"{directory}/vocab.txt: {len(vocab)} entries, config.json says {config['vocab_size']}")

    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tokenizer.no_padding()  # the file pads every encoding to 128 tokens
    ids = tokenizer.encode("Hello world").ids
    if [vocab[i] for i in ids] != ["[CLS]", "hello", "world", "[SEP]"]:
        fail(f"tokenizers: 'Hello world' -> {ids} = {[vocab[i] for i in ids]}, "
             f"expected [CLS] hello world [SEP] (vocab.txt)")

    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    expected = {
        "embeddings.word_embeddings.weight": [config["vocab_size"], hidden],
        "embeddings.position_embeddings.weight": [config["max_position_embeddings"], hidden],
        f"encoder.layer.{layers - 1}.intermediate.dense.weight": [config["intermediate_size"], hidden],
    }
    with safe_open(str(directory / "model.safetensors"), "numpy") as weights:
        names = set(weights.keys())
        if f"encoder.layer.{layers}.output.dense.weight" in names:
            fail(f"model.safetensors has more than the {layers} layers config.json states")
        for name, shape in expected.items():
            if name not in names:
                fail(f"model.safetensors: no tensor {name}")
            if (actual := weights.get_slice(name).get_shape()) != shape:
                fail(f"model.safetensors: {name} has shape {actual}, expected {shape}")
        embedding = weights.get_tensor("embeddings.word_embeddings.weight")
    if embedding.dtype != np.float32 or not np.isfinite(embedding).all():
        fail("model.safetensors: word embeddings are not finite float32")
    pooling = json.loads((directory / "1_Pooling" / "config.json").read_text())
    if not pooling["pooling_mode_mean_tokens"]:
        fail("1_Pooling/config.json: expected mean pooling")
    print(f"minilm: {directory}: 'Hello world' -> {ids}; {len(names)} tensors")


if __name__ == "__main__":
    try:
        check_gemma()
        check_minilm()
    except kiln_models.ModelNotInstalled as error:
        fail(str(error))
    print("PASS")
