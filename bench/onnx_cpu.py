"""Side-by-side CPU latency: kiln vs onnxruntime on the same models, inputs and thread
count, in one run. Prints one row per model with both latencies and their ratio.

With --kernels N it then profiles both engines on each model, in alternating rounds
(kiln-run --profile, then onnxruntime with its profiler) so that the machine's drift
touches both alike, and prints each one's N heaviest kernels (kiln) and nodes
(onnxruntime, after its graph optimizations: fused and NCHWc nodes keep names of their
own) with the median over the rounds of their mean time per run. Matching a kiln kernel to
the onnxruntime node(s) that compute the same thing is left to the reader: fusion differs
(kiln folds a GELU into its product, onnxruntime runs it as five nodes).

usage: python bench/onnx_cpu.py [--threads N] [--repeat N] [--bin build/bin] [--kernels N]
(use the test venv's python: scripts/setup.sh prints nothing about it, but the venv is
~/.cache/kiln/venv-*/bin/python)
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "e2e"))
import onnx_vs_onnxruntime as models  # noqa: E402  (the e2e test's model builders)
sys.path.insert(0, HERE)
import roofline  # noqa: E402  (the parser of kiln-run --profile tables)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def kiln_latency(bin_dir, path, feeds, threads, repeat, work):
    """kiln-run's mean time, its outputs checked against onnxruntime's first (a fast
    wrong answer is not a result)."""
    artifact = os.path.join(work, os.path.basename(path) + ".kiln")
    subprocess.run([os.path.join(bin_dir, "kiln-compile"), path, "-o", artifact], check=True,
                   capture_output=True)
    args = [os.path.join(bin_dir, "kiln-run"), artifact, "--threads", str(threads),
            "--repeat", str(repeat), "--rtol", "1e-3", "--atol", "1e-4"]
    for key, data in feeds.items():
        file = os.path.join(work, f"{os.path.basename(path)}.{key}.npy")
        np.save(file, data)
        args += ["--input", f"{key}={file}"]
    expected = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
    for out, data in zip(onnx.load(path).graph.output, expected):
        file = os.path.join(work, f"{os.path.basename(path)}.{out.name}.expected.npy")
        np.save(file, data)
        args += ["--compare", f"{out.name}={file}"]
    ran = subprocess.run(args, capture_output=True, text=True)
    if ran.returncode != 0:
        sys.exit(f"{path}: kiln disagrees with onnxruntime:\n{ran.stdout}{ran.stderr}")
    out = ran.stdout
    match = re.search(r"time: ([0-9.]+) (us|ms|s)", out)
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit], args


def ort_session(path, threads, profile_prefix=None):
    """An onnxruntime CPU session; with profile_prefix, its profiler on, writing there."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def ort_latency(path, feeds, threads, repeat):
    session = ort_session(path, threads)
    session.run(None, feeds)
    start = time.perf_counter()
    for _ in range(repeat):
        session.run(None, feeds)
    return (time.perf_counter() - start) / repeat


def kiln_kernels(run_args, repeat, work):
    """Mean microseconds per run of each kiln kernel ("kernel what, where"), from one
    kiln-run --profile of `repeat` runs (run_args: kiln_latency's command)."""
    at = run_args.index("--repeat")
    args = run_args[:at] + run_args[at + 2:] + ["--repeat", str(repeat), "--trace",
                                                os.path.join(work, "kiln-trace.json")]
    ran = subprocess.run(args, capture_output=True, text=True, check=True)
    sessions = roofline.parse_profile(ran.stdout)
    if not sessions:
        sys.exit("kiln-run --profile printed no profile table:\n" + ran.stdout)
    runs = sessions[0]["runs"]
    return {f"{row['kernel']} {row['what']}": row["total_ms"] * 1e3 / runs for row in sessions[0]["rows"]}


def ort_nodes(path, feeds, threads, repeat, work):
    """Mean microseconds per run of each onnxruntime node ("name (OpType)"), from its
    profiler over `repeat` runs after one warm-up run (not counted)."""
    session = ort_session(path, threads, os.path.join(work, "onnxruntime-profile"))
    for _ in range(repeat + 1):
        session.run(None, feeds)
    with open(session.end_profiling()) as f:
        events = json.load(f)
    warm_up = min((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    totals = {}
    for e in events:
        name = e.get("name", "")
        if e.get("cat") != "Node" or not name.endswith("_kernel_time") or e["ts"] < warm_up["ts"] + warm_up["dur"]:
            continue
        key = f"{name[:-len('_kernel_time')]} ({e.get('args', {}).get('op_name', '?')})"
        totals[key] = totals.get(key, 0.0) + e["dur"]
    return {key: us / repeat for key, us in totals.items()}


def print_kernels(kiln_rounds, ort_rounds, top):
    """Both engines' `top` heaviest kernels, the median over the rounds of each one's mean
    time per run, side by side."""
    def medians(rounds):
        keys = set().union(*rounds)
        return sorted(((statistics.median(r.get(k, 0.0) for r in rounds), k) for k in keys), reverse=True)
    kiln, other = medians(kiln_rounds), medians(ort_rounds)
    total_k = statistics.median(sum(r.values()) for r in kiln_rounds)
    total_o = statistics.median(sum(r.values()) for r in ort_rounds)
    print(f"  {'kiln kernel':<50}{'us/run':>9}   {'onnxruntime node':<44}{'us/run':>9}")
    for i in range(min(top, max(len(kiln), len(other)))):
        left = f"  {kiln[i][1][:49]:<50}{kiln[i][0]:>9.1f}" if i < len(kiln) else " " * 61
        right = f"   {other[i][1][:43]:<44}{other[i][0]:>9.1f}" if i < len(other) else ""
        print(left + right)
    print(f"  {'all kernels (' + str(len(kiln)) + ')':<50}{total_k:>9.1f}   "
          f"{'all nodes (' + str(len(other)) + ')':<44}{total_o:>9.1f}")


def wide_mlp(rng):
    """Matmul-bound: a batch of 64 through two 512x512 layers (the tiny e2e models mostly
    measure per-call overhead)."""
    from onnx import helper, numpy_helper
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node("Relu", ["h"], ["a"], name="relu"),
             helper.make_node("MatMul", ["a", "w2"], ["y"], name="fc2")]
    inits = [models.weight(rng, "w1", [512, 512], 0.05), models.weight(rng, "w2", [512, 512], 0.05)]
    return models.model("wide_mlp", nodes, [models.value("x", [64, 512])],
                        [models.value("y", [64, 512])], inits)


def bert_block(rng):
    """A BERT-base-sized encoder layer (sequence 128, width 768, 12 heads, FFN 3072), as
    exporters write it: biased projections, softmax attention, erf GELU, post-LayerNorms."""
    from onnx import helper, numpy_helper
    s, d, h, f = 128, 768, 12, 3072

    def const(name, array):
        return numpy_helper.from_array(np.asarray(array), name)

    nodes, inits = [], []

    def linear(x, name, n_in, n_out):
        inits.extend([models.weight(rng, name + "_w", [n_in, n_out], 0.03),
                      models.weight(rng, name + "_b", [n_out], 0.02)])
        nodes.append(helper.make_node("MatMul", [x, name + "_w"], [name + "_mm"], name=name))
        nodes.append(helper.make_node("Add", [name + "_mm", name + "_b"], [name], name=name + "_bias"))
        return name

    def layer_norm(x, name):
        inits.extend([const(name + "_g", np.ones(d, np.float32)), models.weight(rng, name + "_b", [d], 0.02)])
        nodes.append(helper.make_node("LayerNormalization", [x, name + "_g", name + "_b"], [name],
                                      name=name, axis=-1, epsilon=1e-12))
        return name

    inits.extend([const("heads", np.array([1, s, h, d // h], np.int64)),
                  const("merged", np.array([1, s, d], np.int64)),
                  const("scale", np.array(1.0 / np.sqrt(d // h), np.float32)),
                  const("sqrt_half", np.array(1.0 / np.sqrt(2.0), np.float32)),
                  const("one", np.array(1.0, np.float32)),
                  const("half", np.array(0.5, np.float32))])
    heads = {}
    for which, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
        y = linear("x", which, d, d)
        nodes.append(helper.make_node("Reshape", [y, "heads"], [which + "_h"], name=which + "_heads"))
        nodes.append(helper.make_node("Transpose", [which + "_h"], [which + "_t"], name=which + "_t", perm=perm))
        heads[which] = which + "_t"
    nodes += [helper.make_node("MatMul", [heads["q"], heads["k"]], ["scores"], name="scores"),
              helper.make_node("Mul", ["scores", "scale"], ["scaled"], name="scaled"),
              helper.make_node("Softmax", ["scaled"], ["probs"], name="softmax", axis=-1),
              helper.make_node("MatMul", ["probs", heads["v"]], ["ctx"], name="ctx"),
              helper.make_node("Transpose", ["ctx"], ["ctx_t"], name="ctx_t", perm=[0, 2, 1, 3]),
              helper.make_node("Reshape", ["ctx_t", "merged"], ["ctx_m"], name="merge")]
    o = linear("ctx_m", "o", d, d)
    nodes.append(helper.make_node("Add", ["x", o], ["res1"], name="residual1"))
    n1 = layer_norm("res1", "ln1")
    up = linear(n1, "up", d, f)
    nodes += [helper.make_node("Mul", [up, "sqrt_half"], ["g_s"], name="gelu_scale"),
              helper.make_node("Erf", ["g_s"], ["g_erf"], name="gelu_erf"),
              helper.make_node("Add", ["g_erf", "one"], ["g_1"], name="gelu_one"),
              helper.make_node("Mul", [up, "g_1"], ["g_x"], name="gelu_x"),
              helper.make_node("Mul", ["g_x", "half"], ["gelu"], name="gelu_half")]
    down = linear("gelu", "down", f, d)
    nodes.append(helper.make_node("Add", [n1, down], ["res2"], name="residual2"))
    layer_norm("res2", "out")
    return models.model("bert_block", nodes, [models.value("x", [1, s, d])],
                        [models.value("out", [1, s, d])], inits)


def convnet(rng):
    """A small image classifier at 224x224: 8 conv3x3 + BatchNorm + ReLU (16 to 128
    channels), 4 max pools, global average pool, a 1000-way fully connected layer."""
    from onnx import helper, numpy_helper
    nodes, inits = [], []
    x, c_in = "x", 3
    for i, c_out in enumerate((16, 16, 32, 32, 64, 64, 128, 128)):
        p = f"c{i}"
        inits += [models.weight(rng, p + "_k", [c_out, c_in, 3, 3], np.sqrt(2.0 / (9 * c_in))),
                  models.weight(rng, p + "_kb", [c_out], 0.05),
                  numpy_helper.from_array(rng.uniform(0.8, 1.2, c_out).astype(np.float32), p + "_g"),
                  models.weight(rng, p + "_b", [c_out], 0.05),
                  models.weight(rng, p + "_m", [c_out], 0.05),
                  numpy_helper.from_array(rng.uniform(0.5, 1.5, c_out).astype(np.float32), p + "_v")]
        nodes += [helper.make_node("Conv", [x, p + "_k", p + "_kb"], [p + "_y"], name=p, pads=[1, 1, 1, 1]),
                  helper.make_node("BatchNormalization", [p + "_y", p + "_g", p + "_b", p + "_m", p + "_v"],
                                   [p + "_n"], name=p + "_bn"),
                  helper.make_node("Relu", [p + "_n"], [p + "_r"], name=p + "_relu")]
        x, c_in = p + "_r", c_out
        if i % 2 == 1:
            nodes.append(helper.make_node("MaxPool", [x], [p + "_p"], name=p + "_pool",
                                          kernel_shape=[2, 2], strides=[2, 2]))
            x = p + "_p"
    inits += [models.weight(rng, "fc_w", [1000, c_in], 0.05), models.weight(rng, "fc_b", [1000], 0.05)]
    nodes += [helper.make_node("GlobalAveragePool", [x], ["gap"], name="gap"),
              helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
              helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1)]
    return models.model("convnet", nodes, [models.value("x", [1, 3, 224, 224])],
                        [models.value("logits", [1, 1000])], inits)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--only", nargs="*", help="run only these models")
    parser.add_argument("--bin", default=os.path.join(HERE, "..", "build", "bin"))
    parser.add_argument("--kernels", type=int, default=0, metavar="N",
                        help="then profile both engines and print each one's N heaviest kernels")
    parser.add_argument("--rounds", type=int, default=3,
                        help="with --kernels: alternating profiled rounds per engine (median)")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    print(f"CPU: {cpu_name()}; threads {args.threads}; mean of {args.repeat} runs after one warm-up")
    print(f"{'model':<14}{'kiln':>12}{'onnxruntime':>14}{'kiln/ort':>10}")
    with tempfile.TemporaryDirectory() as work:
        built = [(b.__name__, b(rng)) for b in (models.cnn, models.attention_block, models.elementwise, wide_mlp,
                                                  bert_block, convnet)]
        cases = []
        for name, m in built:
            path = os.path.join(work, name + ".onnx")
            onnx.save(m, path)
            cases.append((name, path, models.random_inputs(rng, m)))
        bundled = os.path.join(HERE, "..", "examples", "models")
        cases.append(("mlp", os.path.join(bundled, "mlp.onnx"),
                      {"x": np.load(os.path.join(bundled, "mlp-input.npy"))}))
        for name, path, feeds in cases:
            if args.only and name not in args.only:
                continue
            k, run_args = kiln_latency(args.bin, path, feeds, args.threads, args.repeat, work)
            o = ort_latency(path, feeds, args.threads, args.repeat)
            print(f"{name:<14}{k * 1e6:>10.1f}us{o * 1e6:>12.1f}us{k / o:>10.2f}")
            if args.kernels > 0:
                kiln_rounds, ort_rounds = [], []
                for _ in range(args.rounds):
                    kiln_rounds.append(kiln_kernels(run_args, args.repeat, work))
                    ort_rounds.append(ort_nodes(path, feeds, args.threads, args.repeat, work))
                print(f"  per kernel, median of {args.rounds} alternating profiled rounds of "
                      f"{args.repeat} runs each (profiling adds its own overhead to both):")
                print_kernels(kiln_rounds, ort_rounds, args.kernels)


if __name__ == "__main__":
    main()
