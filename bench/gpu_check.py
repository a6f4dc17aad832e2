"""The GPU check, in two halves: this machine compiles, a machine with an NVIDIA GPU runs.

`gpu_check.py prepare DIR` (here, with the build and the test venv) writes into DIR
everything a GPU machine needs without kiln's build dependencies: kiln-run and
libkiln_runtime.so, the e2e ONNX models and the bundled MLP compiled for
`cuda-sm_80-sm_90`, their inputs, and onnxruntime's outputs (an independent
reference, computed here on the CPU); also a transformer block large enough to time
(`--repeat`), and `run.sh`. `bash DIR/run.sh` (there) runs each model with
`kiln-run --device cuda --compare` against onnxruntime's outputs, then times the
larger ones and a 2048^3 float GEMM (also with --tf32) with `--profile`, each with
cuBLAS and with kiln's own kernels in its place (KILN_CUBLAS=0), and prints the GPU
and the driver it found. Gemma 3's
weights (247 MB) are too large to carry to a lent machine (64 MiB); its GPU numbers
need a machine with kiln built on it (`kiln-generate --device cuda`).

usage: gpu_check.py prepare DIR [--bin BUILD/bin]
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "test", "e2e"))
import onnx_vs_onnxruntime as onnx_models  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


def timed_block(rng):
    """A BERT-base-sized encoder block's projections: 128 tokens x 768, 3072-wide MLP."""
    from onnx import TensorProto, helper
    d, f, s = 768, 3072, 128
    w = lambda name, shape: onnx_models.weight(rng, name, shape, scale=0.03)  # noqa: E731
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="up"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "w2"], ["y0"], name="down"),
        helper.make_node("Add", ["y0", "x"], ["y"], name="residual"),
    ]
    return onnx_models.model("mlp_block", nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [s, d])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [s, d])],
                             [w("w1", [d, f]), w("w2", [f, d])])


def square_gemm(n=2048):
    """x . x for an n x n float input: one GEMM of 2 n^3 operations (cuBLAS's, with
    --gpu-library=auto), timed against the GPU's FP32 and TF32 peaks."""
    from onnx import TensorProto, helper
    return onnx_models.model(f"gemm_{n}", [helper.make_node("MatMul", ["x", "x"], ["y"], name="gemm")],
                             [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, n])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])], [])


def prepare(out, bin_dir):
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, "bin"))
    os.makedirs(os.path.join(out, "lib"))
    shutil.copy2(os.path.join(bin_dir, "kiln-run"), os.path.join(out, "bin"))
    for lib in glob.glob(os.path.join(bin_dir, "..", "lib", "libkiln_runtime.so*")):
        shutil.copy2(lib, os.path.join(out, "lib"), follow_symlinks=False)
    # Without their debug information: what a lent machine is sent is capped.
    strip = shutil.which("strip")
    if strip:
        for f in glob.glob(os.path.join(out, "bin", "*")) + glob.glob(os.path.join(out, "lib", "*")):
            if not os.path.islink(f):
                subprocess.run([strip, "--strip-debug", f], check=True)
    rng = np.random.default_rng(5)
    models = [build(rng) for build in (onnx_models.cnn, onnx_models.attention_block,
                                       onnx_models.elementwise, onnx_models.tiled_mlp,
                                       onnx_models.conv_bn_relu, onnx_models.in_place_softmax)]
    models.append(timed_block(rng))
    models.append(square_gemm())
    lines = ["#!/usr/bin/env bash",
             "# Written by bench/gpu_check.py prepare: runs kiln's CUDA artifacts on this GPU.",
             'cd "$(dirname "$0")"', "export LD_LIBRARY_PATH=$PWD/lib:${LD_LIBRARY_PATH:-}",
             "nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true",
             "failed=0"]
    for m in models:
        name = m.graph.name
        path = os.path.join(out, name + ".onnx")
        onnx.save(m, path)
        feeds = onnx_models.random_inputs(rng, m)
        expected = ort.InferenceSession(path).run(None, feeds)
        timed = name in ("mlp_block", "attention_block") or name.startswith("gemm_")
        # The GEMM is only timed: its 16 MiB result is not carried as well.
        expected = [] if name.startswith("gemm_") else expected
        variants = [("", [])] + ([(".tf32", ["--tf32"])] if name.startswith("gemm_") else [])
        for suffix, extra in variants:
            done = subprocess.run([os.path.join(bin_dir, "kiln-compile"), path, "-o",
                                   os.path.join(out, name + suffix + ".kiln"),
                                   "--target=cuda-sm_80-sm_90", *extra],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"kiln-compile {name}{suffix} failed:\n{done.stderr}")
        os.remove(path)
        inputs = []
        for key, data in feeds.items():
            np.save(os.path.join(out, f"{name}.{key}.npy"), data)
            inputs.append(f"--input {key}={name}.{key}.npy")
        compare = []
        for o, data in zip(m.graph.output, expected):
            np.save(os.path.join(out, f"{name}.{o.name}.expected.npy"), data)
            compare.append(f"--compare {o.name}={name}.{o.name}.expected.npy")
        # Each check with cuBLAS and with kiln's own kernels in its place (KILN_CUBLAS=0).
        for cublas in ("1", "0"):
            run = f"KILN_CUBLAS={cublas} bin/kiln-run {name}.kiln --device cuda " + " ".join(inputs)
            if compare:
                lines.append(f"echo '== {name} KILN_CUBLAS={cublas}: against onnxruntime "
                             f"(rtol {RTOL}, atol {ATOL})'")
                lines.append(" ".join([run] + compare + [f"--rtol {RTOL} --atol {ATOL}"]) +
                             " || failed=$((failed + 1))")
            if timed:
                for suffix, _ in variants:
                    lines.append(f"echo '== {name}{suffix} KILN_CUBLAS={cublas}: timing'")
                    lines.append(run.replace(f"{name}.kiln", f"{name}{suffix}.kiln") +
                                 " --repeat 20 --profile || failed=$((failed + 1))")
    lines.append('echo "gpu check: $failed failed"')
    lines.append("exit $((failed > 0))")
    with open(os.path.join(out, "run.sh"), "w") as f:
        f.write("\n".join(lines) + "\n")
    size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(out, "**"), recursive=True)
               if os.path.isfile(p))
    print(f"wrote {out} ({size / 2**20:.1f} MiB): run it with `bash {out}/run.sh` on a machine "
          f"with an NVIDIA GPU")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["prepare"])
    parser.add_argument("dir")
    parser.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    a = parser.parse_args()
    prepare(os.path.abspath(a.dir), a.bin)


if __name__ == "__main__":
    main()
