"""The GPU backends on the e2e models: every model compiles for CUDA (two architectures)
and Metal; every kernel's PTX assembles with the CUDA toolkit's ptxas for sm_80 and
sm_90; every kernel's Metal source declares its kernel and binds its buffers. Where a
CUDA GPU is present, each model also runs on it (kiln-run --device cuda) and its
outputs are compared with an independent reference (onnxruntime for the ONNX models)
or with the CPU path's (kiln's own ops, tolerances of float reassociation). Without a
GPU the runs are skipped with the runtime's own reason, printed.

Gemma 3 270M (when setup installed it) compiles too, prefill and decode over a KV cache.

usage: gpu_targets.py BIN_DIR WORK_DIR BUNDLED_MODEL_DIR KERNEL_INPUT_DIR
"""
import glob
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
import kiln_models  # noqa: E402
import onnx_vs_onnxruntime as onnx_models  # noqa: E402

# A GPU sums in another order than onnxruntime's CPU kernels (one thread per output,
# a different association than the CPU's vector lanes).
RTOL, ATOL = 1e-4, 1e-5
PTXAS_ARCHS = {"sm_80": ["sm_80"], "sm_86": ["sm_86", "sm_90"]}


def find_ptxas():
    for candidate in (shutil.which("ptxas"), "/usr/local/cuda/bin/ptxas"):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def compile_model(bin_dir, path, artifact, target, code_dir, extra=()):
    """(error or None, the kernels cuBLAS computes where the runtime has it)."""
    shutil.rmtree(code_dir, ignore_errors=True)
    args = [os.path.join(bin_dir, "kiln-compile"), path, "-o", artifact,
            f"--target={target}", f"--emit-device-code={code_dir}", *extra]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        return f"kiln-compile --target={target} failed:\n{done.stderr}", 0
    library = re.search(r"\((\d+) of them cuBLAS GEMMs", done.stderr)
    return None, int(library.group(1)) if library else 0


def check_ptx(ptxas, code_dir):
    """Every .ptx assembles for its architecture (and the newest one's also for sm_90)."""
    files = sorted(glob.glob(os.path.join(code_dir, "*.ptx")))
    if not files:
        return "no PTX was written", 0
    for ptx in files:
        arch = ptx.rsplit(".", 2)[1]
        text = open(ptx).read()
        if f".target {arch}" not in text or ".entry " not in text:
            return f"{ptx}: no '.target {arch}' or no .entry", 0
        for sm in PTXAS_ARCHS.get(arch, [arch]):
            done = subprocess.run([ptxas, f"-arch={sm}", ptx, "-o", os.devnull],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                return f"ptxas -arch={sm} {ptx} failed:\n{done.stderr}", 0
    return None, len(files)


def check_metal(code_dir):
    """Every .metal source declares a kernel whose buffers are bound by index."""
    files = sorted(glob.glob(os.path.join(code_dir, "*.metal")))
    if not files:
        return "no Metal source was written", 0
    for source in files:
        text = open(source).read()
        if "#include <metal_stdlib>" not in text:
            return f"{source}: no #include <metal_stdlib>", 0
        kernels = re.findall(r"kernel void (\w+)\(", text)
        if not kernels:
            return f"{source}: declares no kernel", 0
        if not re.search(r"\[\[\s*buffer\(\d+\)\s*\]\]", text):
            return f"{source}: binds no buffer", 0
        if not re.search(r"\[\[\s*threadgroup_position_in_grid\s*\]\]", text):
            return f"{source}: its kernels take no threadgroup position", 0
    return None, len(files)


def check_loads(bin_dir, artifact):
    """The runtime reads the cuda artifact (its checks of every buffer, kernel and
    cuBLAS call against its dispatches) and stops only at running it on this CPU."""
    done = subprocess.run([os.path.join(bin_dir, "kiln-run"), artifact, "--device", "cpu"],
                          capture_output=True, text=True)
    if "the artifact has code for cuda only" not in done.stderr:
        return f"kiln-run does not read the cuda artifact as valid:\n{done.stderr}"
    return None


def run_on_cuda(bin_dir, artifact, feeds, expected, work, name, cublas=True):
    """Runs the cuda artifact with kiln-run --device cuda and compares; returns
    (ok, message); ok is None when no GPU is here (message: the runtime's reason).
    Without `cublas` (KILN_CUBLAS=0), kiln's own kernels compute the library GEMMs."""
    args = [os.path.join(bin_dir, "kiln-run"), artifact, "--device", "cuda", "--quiet"]
    for key, data in feeds.items():
        file = os.path.join(work, f"{name}.{key}.npy")
        np.save(file, data)
        args += ["--input", f"{key}={file}"]
    for key, data in expected.items():
        file = os.path.join(work, f"{name}.{key}.expected.npy")
        np.save(file, data)
        args += ["--compare", f"{key}={file}"]
    args += ["--rtol", str(RTOL), "--atol", str(ATOL)]
    env = dict(os.environ, KILN_CUBLAS="1" if cublas else "0")
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    output = done.stdout + done.stderr
    if done.returncode != 0 and re.search(r"no CUDA driver|no CUDA device", output):
        return None, output.strip().splitlines()[-1]
    return done.returncode == 0, output


def main():
    bin_dir, work, bundled, kernel_inputs = sys.argv[1:5]
    try:
        ggufs = [str(kiln_models.gemma_gguf())]
    except kiln_models.ModelNotInstalled as error:
        print(f"SKIP Gemma 3: {error}")
        ggufs = []
    os.makedirs(work, exist_ok=True)
    ptxas = find_ptxas()
    if not ptxas:
        print("SKIP ptxas checks: no ptxas on PATH or in /usr/local/cuda/bin")
    rng = np.random.default_rng(11)
    cases = []  # (name, path, feeds or None, expected outputs or None, extra compile args)
    for build in (onnx_models.cnn, onnx_models.attention_block, onnx_models.elementwise,
                  onnx_models.tiled_mlp, onnx_models.conv_bn_relu, onnx_models.in_place_softmax):
        m = build(rng)
        path = os.path.join(work, m.graph.name + ".onnx")
        onnx.save(m, path)
        feeds = onnx_models.random_inputs(rng, m)
        outputs = ort.InferenceSession(path).run(None, feeds)
        expected = {o.name: v for o, v in zip(m.graph.output, outputs)}
        cases.append((m.graph.name, path, feeds, expected, []))
    mlp = os.path.join(bundled, "mlp.onnx")
    feeds = {"x": np.load(os.path.join(bundled, "mlp-input.npy"))}
    outputs = ort.InferenceSession(mlp).run(None, feeds)
    cases.append(("bundled-mlp", mlp, feeds,
                  {o.name: v for o, v in zip(onnx.load(mlp).graph.output, outputs)}, []))
    # kiln's own ops as the CPU backend's tests exercise them (attention over caches,
    # packed weights of every format, RoPE, scans): compiled, not run. Their weight
    # files are made here as sparse files of zeros (zero is a valid value in every
    # format).
    for path in sorted(glob.glob(os.path.join(kernel_inputs, "*.mlir"))):
        text = open(path).read()
        if "tensor.insert_slice" in text:
            continue  # the CPU backend's error test: no backend lowers it
        copy = os.path.join(work, os.path.basename(path))
        with open(copy, "w") as f:
            f.write(text)
        for source in set(re.findall(r'kiln\.weight "[^"]*" from "([^"]+)"', text)):
            with open(os.path.join(work, source), "wb") as f:
                f.truncate(64 << 20)
        cases.append((os.path.basename(path)[:-5], copy, None, None, []))
    for path in ggufs:
        cases.append((os.path.basename(path)[:-5], path, None, None, ["--kv-cache", "--seq-len=16", "--ctx=128"]))

    failures, runs, skipped_reason = [], 0, None
    counts = {"ptx": 0, "metal": 0, "cublas": 0}
    for name, path, feeds, expected, extra in cases:
        artifact = os.path.join(work, name + ".cuda.kiln")
        code_dir = os.path.join(work, name + ".cuda")
        error, library = compile_model(bin_dir, path, artifact, "cuda-sm_80-sm_90", code_dir,
                                       extra)
        counts["cublas"] += library
        if not error:
            error = check_loads(bin_dir, artifact)
        if not error and ptxas:
            error, n = check_ptx(ptxas, code_dir)
            counts["ptx"] += n
        if not error:
            metal_dir = os.path.join(work, name + ".metal")
            error, _ = compile_model(bin_dir, path, os.path.join(work, name + ".metal.kiln"),
                                     "metal", metal_dir, extra)
            if not error:
                error, n = check_metal(metal_dir)
                counts["metal"] += n
        if not error and feeds is not None:
            ok, message = run_on_cuda(bin_dir, artifact, feeds, expected, work, name)
            if ok is None:
                skipped_reason = message
            elif not ok:
                error = f"on the GPU, kiln-run disagrees with onnxruntime:\n{message}"
            else:
                runs += 1
                if library:  # and the same GEMMs in kiln's own kernels
                    ok, message = run_on_cuda(bin_dir, artifact, feeds, expected, work, name,
                                              cublas=False)
                    if not ok:
                        error = f"with KILN_CUBLAS=0, kiln-run disagrees with onnxruntime:\n{message}"
        if error:
            failures.append(name)
            print(f"FAIL {name}: {error}")
        else:
            print(f"PASS {name}")
    if skipped_reason:
        print(f"SKIP running on a GPU: {skipped_reason}")
    print(f"{len(cases) - len(failures)} models compiled for cuda and metal, "
          f"{counts['ptx']} PTX files assembled ({counts['cublas']} kernels cuBLAS GEMMs "
          f"where the runtime has cuBLAS), {counts['metal']} Metal sources checked, "
          f"{runs} models run on a GPU, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
