"""Every point of the schedule space is a correct schedule, as the autotuner needs: for
models covering each kernel class (GEMMs with epilogues, column panels and dense
copies; a convolution; a softmax attention written as ONNX MatMuls; a BERT's
kiln.attention, and one quantized to int8 (packed panels);
elementwise and reduction kernels), compiles seeded random points of
`kiln-compile --schedule-space` (every knob set at once, through --schedule) and checks
every output against the default schedule's (rtol 1e-4: schedules reorder sums).

usage: schedule_space.py BIN_DIR WORK_DIR [POINTS_PER_MODEL]
"""
import os
import random
import subprocess
import sys

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import minilm_vs_numpy  # noqa: E402
import onnx_vs_onnxruntime as onnx_models  # noqa: E402


def space(bin_dir):
    out = subprocess.run([os.path.join(bin_dir, "kiln-compile"), "--schedule-space"],
                         check=True, capture_output=True, text=True).stdout
    knobs = {}
    for line in out.splitlines():
        name, values = line.split(":")
        knobs[name.strip()] = [int(v) for v in values.split()]
    return knobs


def compile_and_run(bin_dir, model, extra, inputs, work, tag, compare_dir=None):
    artifact = os.path.join(work, tag + ".kiln")
    compiled = subprocess.run([os.path.join(bin_dir, "kiln-compile"), model, "-o", artifact,
                               *extra], capture_output=True, text=True)
    if compiled.returncode != 0:
        return f"kiln-compile failed:\n{compiled.stderr}"
    args = [os.path.join(bin_dir, "kiln-run"), artifact, "--quiet", "--threads", "2"]
    for name, path in inputs.items():
        args += ["--input", f"{name}={path}"]
    if compare_dir is None:
        args += ["--output-dir", os.path.join(work, "default")]
    else:
        for file in sorted(os.listdir(compare_dir)):
            args += ["--compare", f"{file[:-4]}={os.path.join(compare_dir, file)}"]
        args += ["--rtol", "1e-4", "--atol", "1e-5"]
    ran = subprocess.run(args, capture_output=True, text=True)
    if ran.returncode != 0:
        return f"kiln-run failed or disagreed:\n{ran.stdout}{ran.stderr}"
    return None


def models(work):
    rng = np.random.default_rng(11)
    for build in (onnx_models.tiled_mlp, onnx_models.conv_bn_relu, onnx_models.attention_block,
                  onnx_models.cnn, onnx_models.elementwise):
        m = build(rng)
        directory = os.path.join(work, m.graph.name)
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "model.onnx")
        onnx.save(m, path)
        inputs = {}
        for name, data in onnx_models.random_inputs(rng, m).items():
            inputs[name] = os.path.join(directory, name + ".npy")
            np.save(inputs[name], data)
        yield m.graph.name, path, [], inputs, directory
    bert, config, _ = minilm_vs_numpy.tiny_bert(os.path.join(work, "bert-model"), "F32", "", False)
    directory = os.path.join(work, "bert")
    os.makedirs(directory, exist_ok=True)
    ids = rng.integers(0, config["vocab_size"], (2, 16))
    mask = np.ones((2, 16), np.int32)
    mask[1, 11:] = 0
    inputs = {}
    for name, data in (("input_ids", ids), ("attention_mask", mask),
                       ("token_type_ids", np.zeros((2, 16)))):
        inputs[name] = os.path.join(directory, name + ".npy")
        np.save(inputs[name], data.astype(np.int32))
    yield "bert", bert, ["--batch", "2", "--seq-len", "16"], inputs, directory
    # Sizes in multiples of 32, so that --quantize=int8 packs every product (q8_0x16
    # panels, over 32 rows: the knobs product_panel and product_rows), with fused
    # epilogues.
    wide, _, _ = minilm_vs_numpy.tiny_bert(os.path.join(work, "bert-model"), "F32", "", False,
                                           hidden=64, heads=4, intermediate=128)
    yield "bert-64-int8", wide, ["--batch", "2", "--seq-len", "16", "--quantize=int8",
                                 "--quantize-keep-float=none"], inputs, directory


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    bin_dir, work = sys.argv[1], sys.argv[2]
    points = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    os.makedirs(work, exist_ok=True)
    knobs = space(bin_dir)
    chooser = random.Random(20261203)
    failures = 0
    for name, path, extra, inputs, directory in models(work):
        error = compile_and_run(bin_dir, path, extra, inputs, directory, "default")
        if error:
            print(f"FAIL {name} (default schedule): {error}")
            failures += 1
            continue
        # Points found failing once (by kiln-tune), then the seeded random ones.
        fixed = ["vector_width=1 tile_vectors=3"]
        for i in range(len(fixed) + points):
            schedule = fixed[i] if i < len(fixed) else \
                " ".join(f"{k}={chooser.choice(v)}" for k, v in knobs.items())
            error = compile_and_run(bin_dir, path, extra + ["--schedule", schedule], inputs,
                                    directory, f"point{i}", os.path.join(directory, "default"))
            if error:
                print(f"FAIL {name} with --schedule '{schedule}': {error}")
                failures += 1
            else:
                print(f"PASS {name} with --schedule '{schedule}'")
    print(f"{failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
