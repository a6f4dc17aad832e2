"""Side-by-side CPU latency: kiln vs onnxruntime on the same models, inputs and thread
count, in one run. Prints one row per model with both latencies and their ratio.

usage: python bench/onnx_cpu.py [--threads N] [--repeat N] [--bin build/bin]
(use the test venv's python: scripts/setup.sh prints nothing about it, but the venv is
~/.cache/kiln/venv-*/bin/python)
"""
import argparse
import os
import platform
import re
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
    artifact = os.path.join(work, os.path.basename(path) + ".kiln")
    subprocess.run([os.path.join(bin_dir, "kiln-compile"), path, "-o", artifact], check=True,
                   capture_output=True)
    args = [os.path.join(bin_dir, "kiln-run"), artifact, "--threads", str(threads),
            "--repeat", str(repeat)]
    for key, data in feeds.items():
        file = os.path.join(work, f"{os.path.basename(path)}.{key}.npy")
        np.save(file, data)
        args += ["--input", f"{key}={file}"]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    match = re.search(r"time: ([0-9.]+) (us|ms|s)", out)
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


def ort_latency(path, feeds, threads, repeat):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    session.run(None, feeds)
    start = time.perf_counter()
    for _ in range(repeat):
        session.run(None, feeds)
    return (time.perf_counter() - start) / repeat


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--bin", default=os.path.join(HERE, "..", "build", "bin"))
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    print(f"CPU: {cpu_name()}; threads {args.threads}; mean of {args.repeat} runs after one warm-up")
    print(f"{'model':<14}{'kiln':>12}{'onnxruntime':>14}{'kiln/ort':>10}")
    with tempfile.TemporaryDirectory() as work:
        built = [(b.__name__, b(rng)) for b in (models.cnn, models.attention_block, models.elementwise, wide_mlp)]
        cases = []
        for name, m in built:
            path = os.path.join(work, name + ".onnx")
            onnx.save(m, path)
            cases.append((name, path, models.random_inputs(rng, m)))
        bundled = os.path.join(HERE, "..", "examples", "models")
        cases.append(("mlp", os.path.join(bundled, "mlp.onnx"),
                      {"x": np.load(os.path.join(bundled, "mlp-input.npy"))}))
        for name, path, feeds in cases:
            k = kiln_latency(args.bin, path, feeds, args.threads, args.repeat, work)
            o = ort_latency(path, feeds, args.threads, args.repeat)
            print(f"{name:<14}{k * 1e6:>10.1f}us{o * 1e6:>12.1f}us{k / o:>10.2f}")


if __name__ == "__main__":
    main()
