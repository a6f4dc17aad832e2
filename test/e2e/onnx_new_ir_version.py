"""ONNX files as current tools write them: a model saved by the venv's onnx package with
its default IR version (newer than libonnx 1.12's IR version 8) at opset 17, with its
weights as external data, compiles with kiln-compile and runs with kiln-run in agreement
with onnxruntime; and a model at opset 18, newer than libonnx's schemas (onnxruntime
runs it), is refused with an error naming the file, the opset and its ops.

usage: onnx_new_ir_version.py BIN_DIR WORK_DIR
"""
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from onnx_vs_onnxruntime import check, random_inputs, value, weight

LIBONNX_IR_VERSION = 8
LIBONNX_NEWEST_OPSET = 17


def block(rng, opset):
    """MatMul, LayerNormalization, Softmax and a ReduceMean over axis 1: ReduceMean's
    axes are an attribute up to opset 17 and an input from opset 18."""
    d = 16
    inits = [weight(rng, "w", [d, d]), weight(rng, "g", [d]), weight(rng, "b", [d])]
    if opset < 18:
        reduce = helper.make_node("ReduceMean", ["p"], ["out"], name="mean", axes=[1],
                                  keepdims=0)
    else:
        reduce = helper.make_node("ReduceMean", ["p", "axes"], ["out"], name="mean",
                                  keepdims=0)
        inits.append(numpy_helper.from_array(np.array([1], np.int64), "axes"))
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="proj"),
        helper.make_node("LayerNormalization", ["h", "g", "b"], ["n"], name="ln", axis=-1,
                         epsilon=1e-5),
        helper.make_node("Softmax", ["n"], ["p"], name="softmax", axis=-1),
        reduce,
    ]
    graph = helper.make_graph(nodes, f"block{opset}", [value("x", [2, 5, d])],
                              [value("out", [2, d])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(m)
    return m


def accepts_current_ir_version(rng, bin_dir, work):
    m = block(rng, LIBONNX_NEWEST_OPSET)
    if m.ir_version <= LIBONNX_IR_VERSION:
        print(f"FAIL accepts_current_ir_version: onnx {onnx.__version__} writes IR version "
              f"{m.ir_version}, which does not test what is newer than libonnx's")
        return False
    directory = os.path.join(work, "external")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "block.onnx")
    onnx.save(m, path, save_as_external_data=True, location="block.weights",
              size_threshold=0)
    print(f"onnx {onnx.__version__}: IR version {m.ir_version}, opset {LIBONNX_NEWEST_OPSET}")
    return check("accepts_current_ir_version", path, random_inputs(rng, m), bin_dir, work)


def rejects_newer_opset(rng, bin_dir, work):
    name = "rejects_newer_opset"
    m = block(rng, LIBONNX_NEWEST_OPSET + 1)
    path = os.path.join(work, "block18.onnx")
    onnx.save(m, path)
    ort.InferenceSession(path).run(None, random_inputs(rng, m))
    compiled = subprocess.run([os.path.join(bin_dir, "kiln-compile"), path, "-o",
                               os.path.join(work, "block18.kiln")],
                              capture_output=True, text=True)
    expected = (f"{path}:0:0: error: opset 18 of domain 'ai.onnx' (used by MatMul, "
                f"LayerNormalization, Softmax, ReduceMean) is newer than the ONNX schemas "
                f"kiln is built with")
    if compiled.returncode == 0 or expected not in compiled.stderr:
        print(f"FAIL {name}: expected kiln-compile to fail with\n  {expected}\n"
              f"got exit code {compiled.returncode}:\n{compiled.stderr}")
        return False
    print(f"PASS {name}")
    return True


def main():
    bin_dir, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(14)
    results = [accepts_current_ir_version(rng, bin_dir, work),
               rejects_newer_opset(rng, bin_dir, work)]
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
