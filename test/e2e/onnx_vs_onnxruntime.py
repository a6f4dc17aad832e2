"""End-to-end numerics: ONNX models compiled by kiln-compile and run by kiln-run agree
with onnxruntime (an independent implementation) on the same inputs.

Each model is built here with onnx.helper from seeded random weights, so nothing is
downloaded and nothing expected is produced by kiln itself.

usage: onnx_vs_onnxruntime.py BIN_DIR WORK_DIR [BUNDLED_MODEL_DIR]
"""
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

# f32 kernels sum in a different order than onnxruntime's (vectorized, split
# reductions), so results differ by a few ulps times the reduction length.
RTOL, ATOL = 1e-4, 1e-5


# libonnx 1.12, which kiln imports through, knows opsets up to 17. The IR version is the
# venv's onnx's default, newer than libonnx's (see onnx_new_ir_version.py).
def model(name, nodes, inputs, outputs, initializers, opset=17):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializers)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(m)
    return m


def value(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def weight(rng, name, shape, scale=0.2):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def cnn(rng):
    nodes = [
        helper.make_node("Conv", ["x", "k1", "c1"], ["y1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["y1", "g", "b", "m", "v"], ["n1"], name="bn1"),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "k2"], ["y2"], name="conv2", strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["y2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["out"], name="fc", transB=1),
    ]
    inits = [weight(rng, "k1", [8, 3, 3, 3]), weight(rng, "c1", [8]),
             weight(rng, "g", [8]), weight(rng, "b", [8]), weight(rng, "m", [8]),
             numpy_helper.from_array(rng.uniform(0.5, 1.5, 8).astype(np.float32), "v"),
             weight(rng, "k2", [16, 8, 3, 3]), weight(rng, "fc", [5, 16]), weight(rng, "fcb", [5])]
    return model("cnn", nodes, [value("x", [2, 3, 16, 16])], [value("out", [2, 5])], inits)


def attention_block(rng):
    d, s, h = 32, 6, 4
    nodes = [
        helper.make_node("LayerNormalization", ["x", "ln_g", "ln_b"], ["n"], name="ln", axis=-1),
        helper.make_node("MatMul", ["n", "wq"], ["q"], name="q"),
        helper.make_node("MatMul", ["n", "wk"], ["k"], name="k"),
        helper.make_node("MatMul", ["n", "wv"], ["v"], name="v"),
        helper.make_node("Reshape", ["q", "heads"], ["qh"], name="q_heads"),
        helper.make_node("Reshape", ["k", "heads"], ["kh"], name="k_heads"),
        helper.make_node("Reshape", ["v", "heads"], ["vh"], name="v_heads"),
        helper.make_node("Transpose", ["qh"], ["qt"], name="q_t", perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["kh"], ["kt"], name="k_t", perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["vh"], ["vt"], name="v_t", perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", ["qt", "kt"], ["scores"], name="scores"),
        helper.make_node("Mul", ["scores", "scale"], ["scaled"], name="scale"),
        helper.make_node("Softmax", ["scaled"], ["probs"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["probs", "vt"], ["ctx"], name="ctx"),
        helper.make_node("Transpose", ["ctx"], ["ctx_t"], name="ctx_t", perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ctx_t", "merged"], ["ctx_m"], name="merge"),
        helper.make_node("MatMul", ["ctx_m", "wo"], ["o"], name="o"),
        helper.make_node("Add", ["x", "o"], ["res"], name="residual"),
        helper.make_node("Erf", ["res"], ["erf"], name="erf"),
        helper.make_node("Sigmoid", ["erf"], ["out"], name="sigmoid"),
    ]
    inits = [weight(rng, "ln_g", [d]), weight(rng, "ln_b", [d]),
             weight(rng, "wq", [d, d]), weight(rng, "wk", [d, d]), weight(rng, "wv", [d, d]),
             weight(rng, "wo", [d, d]),
             numpy_helper.from_array(np.array([1, s, h, d // h], np.int64), "heads"),
             numpy_helper.from_array(np.array([1, s, d], np.int64), "merged"),
             numpy_helper.from_array(np.array(1 / np.sqrt(d // h), np.float32), "scale")]
    return model("attention", nodes, [value("x", [1, s, d])], [value("out", [1, s, d])], inits)


def elementwise(rng):
    nodes = [
        helper.make_node("Tanh", ["a"], ["t"], name="tanh"),
        helper.make_node("Div", ["t", "b"], ["q"], name="div"),
        helper.make_node("Abs", ["q"], ["aq"], name="abs"),
        helper.make_node("Pow", ["aq", "e"], ["p"], name="pow"),
        helper.make_node("Less", ["a", "b"], ["lt"], name="less"),
        helper.make_node("Where", ["lt", "p", "a"], ["w"], name="where"),
        helper.make_node("Clip", ["w", "lo", "hi"], ["c"], name="clip"),
        helper.make_node("ReduceMean", ["c"], ["out"], name="mean", axes=[1], keepdims=1),
    ]
    inits = [numpy_helper.from_array(np.array(0.5, np.float32), "e"),
             numpy_helper.from_array(np.array(-0.8, np.float32), "lo"),
             numpy_helper.from_array(np.array(0.9, np.float32), "hi")]
    return model("elementwise", nodes, [value("a", [3, 7, 5]), value("b", [7, 5])],
                 [value("out", [3, 1, 5])], inits)


def tiled_mlp(rng):
    """Big enough for the GEMM schedule's panels, dense copies and row tiles (64 rows,
    K 256, 384 columns), with epilogues fused onto both products: bias + erf GELU, and
    bias + residual."""
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
        helper.make_node("Add", ["h", "b1"], ["hb"], name="fc1_bias"),
        helper.make_node("Mul", ["hb", "sqrt_half"], ["hs"], name="gelu_scale"),
        helper.make_node("Erf", ["hs"], ["he"], name="gelu_erf"),
        helper.make_node("Add", ["he", "one"], ["h1"], name="gelu_one"),
        helper.make_node("Mul", ["hb", "h1"], ["hg"], name="gelu"),
        helper.make_node("MatMul", ["hg", "w2"], ["y"], name="fc2"),
        helper.make_node("Add", ["y", "b2"], ["yb"], name="fc2_bias"),
        helper.make_node("Add", ["x", "yb"], ["out"], name="residual"),
    ]
    inits = [weight(rng, "w1", [256, 384], 0.06), weight(rng, "b1", [384], 0.1),
             weight(rng, "w2", [384, 256], 0.05), weight(rng, "b2", [256], 0.1),
             numpy_helper.from_array(np.array(0.5 ** 0.5, np.float32), "sqrt_half"),
             numpy_helper.from_array(np.array(1.0, np.float32), "one")]
    return model("tiled_mlp", nodes, [value("x", [1, 64, 256])], [value("out", [1, 64, 256])],
                 inits)


def conv_bn_relu(rng):
    """A 3x3 convolution over 32 channels at 28x28 (the rows of its register tile are
    output channels, the columns a vector of output pixels) with bias, BatchNorm and ReLU
    fused after it, then a max pool."""
    c = 32
    nodes = [
        helper.make_node("Conv", ["x", "k", "kb"], ["y"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["y", "g", "b", "m", "v"], ["n"], name="bn"),
        helper.make_node("Relu", ["n"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["out"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
    ]
    inits = [weight(rng, "k", [c, 16, 3, 3], 0.1), weight(rng, "kb", [c]),
             weight(rng, "g", [c]), weight(rng, "b", [c]), weight(rng, "m", [c]),
             numpy_helper.from_array(rng.uniform(0.5, 1.5, c).astype(np.float32), "v")]
    return model("conv_bn_relu", nodes, [value("x", [1, 16, 28, 28])],
                 [value("out", [1, c, 14, 14])], inits)


def in_place_softmax(rng):
    """A softmax spelled out after a product, 37 x 1003: the exponential and the division
    each read their first operand only where they write, as its last reader, so
    kiln-plan-memory gives them its storage. Odd sizes put vector tails and uneven thread
    chunks on the kernels that load and store the same bytes."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="product"),
        helper.make_node("ReduceMax", ["h"], ["m"], name="max", axes=[-1], keepdims=1),
        helper.make_node("Sub", ["h", "m"], ["d"], name="shift"),
        helper.make_node("Exp", ["d"], ["e"], name="exp"),
        helper.make_node("ReduceSum", ["e", "axis"], ["s"], name="sum", keepdims=1),
        helper.make_node("Div", ["e", "s"], ["out"], name="normalize"),
    ]
    inits = [weight(rng, "w", [24, 1003], 0.3),
             numpy_helper.from_array(np.array([-1], np.int64), "axis")]
    return model("in_place_softmax", nodes, [value("x", [37, 24])], [value("out", [37, 1003])],
                 inits)


def random_inputs(rng, m):
    feeds = {}
    for inp in m.graph.input:
        shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        data = rng.standard_normal(shape).astype(np.float32)
        if inp.name == "b":
            data = np.where(np.abs(data) < 0.1, 0.5, data).astype(np.float32)
        feeds[inp.name] = data
    return feeds


def check(name, path, feeds, bin_dir, work):
    expected = ort.InferenceSession(path).run(None, feeds)
    artifact = os.path.join(work, name + ".kiln")
    compiled = subprocess.run([os.path.join(bin_dir, "kiln-compile"), path, "-o", artifact],
                              capture_output=True, text=True)
    if compiled.returncode != 0:
        print(f"FAIL {name}: kiln-compile failed:\n{compiled.stderr}")
        return False
    args = [os.path.join(bin_dir, "kiln-run"), artifact, "--quiet"]
    for key, data in feeds.items():
        file = os.path.join(work, f"{name}.{key}.npy")
        np.save(file, data)
        args += ["--input", f"{key}={file}"]
    m = onnx.load(path)
    for out, data in zip(m.graph.output, expected):
        file = os.path.join(work, f"{name}.{out.name}.expected.npy")
        np.save(file, data)
        args += ["--compare", f"{out.name}={file}"]
    args += ["--rtol", str(RTOL), "--atol", str(ATOL)]
    ran = subprocess.run(args, capture_output=True, text=True)
    if ran.returncode != 0:
        print(f"FAIL {name}: kiln-run disagrees with onnxruntime (rtol {RTOL}, atol {ATOL}):\n"
              f"{ran.stdout}{ran.stderr}")
        return False
    print(f"PASS {name}")
    return True


def main():
    bin_dir, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(7)
    cases = []
    for build in (cnn, attention_block, elementwise, tiled_mlp, conv_bn_relu, in_place_softmax):
        m = build(rng)
        path = os.path.join(work, m.graph.name + ".onnx")
        onnx.save(m, path)
        cases.append((m.graph.name, path, random_inputs(rng, m)))
    if len(sys.argv) > 3:
        bundled = sys.argv[3]
        cases.append(("bundled-mlp", os.path.join(bundled, "mlp.onnx"),
                      {"x": np.load(os.path.join(bundled, "mlp-input.npy"))}))
    results = [check(name, path, feeds, bin_dir, work) for name, path, feeds in cases]
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
