"""Writes mlp.onnx, the bundled default ONNX model, and a sample input for it.

A digit-classifier-shaped MLP: x[1, 64] -> Gemm(64x128) -> Relu -> Gemm(128x10) -> Softmax.
The weights are seeded random numbers: the model is for exercising the compiler, not
for classifying anything. Run with the test venv's python (numpy, onnx):
    python make_mlp.py   (writes next to this script)
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    rng = np.random.default_rng(20261123)
    w1 = (rng.standard_normal((64, 128)) / 8).astype(np.float32)
    b1 = (rng.standard_normal(128) / 8).astype(np.float32)
    w2 = (rng.standard_normal((128, 10)) / 8).astype(np.float32)
    b2 = (rng.standard_normal(10) / 8).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["a"], name="relu1"),
        helper.make_node("Gemm", ["a", "w2", "b2"], ["logits"], name="fc2"),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
         numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b2, "b2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="kiln examples/models/make_mlp.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(HERE, "mlp.onnx"))
    np.save(os.path.join(HERE, "mlp-input.npy"),
            rng.standard_normal((1, 64)).astype(np.float32))


if __name__ == "__main__":
    main()
