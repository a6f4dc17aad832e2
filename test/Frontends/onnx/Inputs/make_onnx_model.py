"""Writes small ONNX models for the importer's lit tests, with only the standard
library (a few protobuf fields of onnx.proto written by hand), so the tests need no
onnx package.

usage: make_onnx_model.py OUT (--relu-chain N [--shape D0,D1,...] | --expand D0,D1,...)

--relu-chain N: y = Relu(Relu(...Relu(x))) with N nodes named relu0 .. relu<N-1>, over
x: float[--shape] (default [4]); the intermediate values are t1 .. t<N-1>.
--expand SHAPE: y = ReduceSum(t = Expand(x, SHAPE)) over x: float[1], so that only the
intermediate t (node 'expand') has SHAPE; y is float[1, ..., 1].
"""
import argparse
import struct

FLOAT, INT64 = 1, 7  # onnx.TensorProto.DataType


def varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number, payload):
    """A length-delimited field (wire type 2): strings and nested messages."""
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def integer(number, value):
    """A varint field (wire type 0)."""
    return varint(number << 3) + varint(value)


def value_info(name, shape):
    # ValueInfoProto{name=1, type=2: TypeProto{tensor_type=1: {elem_type=1, shape=2:
    # TensorShapeProto{dim=1: {dim_value=1}}}}}
    dims = b"".join(field(1, integer(1, d)) for d in shape)
    tensor = integer(1, FLOAT) + field(2, dims)
    return field(1, name) + field(2, field(1, tensor))


def int64_initializer(name, values):
    # TensorProto{dims=1, data_type=2, int64_data=7 (packed), name=8}
    packed = b"".join(varint(v) for v in values)
    return integer(1, len(values)) + integer(2, INT64) + field(7, packed) + field(8, name)


def node(op_type, inputs, outputs, name):
    # NodeProto{input=1, output=2, name=3, op_type=4}
    return (b"".join(field(1, i) for i in inputs) + b"".join(field(2, o) for o in outputs) +
            field(3, name) + field(4, op_type))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--relu-chain", type=int)
    mode.add_argument("--expand")
    parser.add_argument("--shape", default="4")
    args = parser.parse_args()

    graph = bytearray()
    if args.expand:
        shape = [int(d) for d in args.expand.split(",")]
        graph += field(1, node("Expand", ["x", "shape"], ["t"], "expand"))
        graph += field(1, node("ReduceSum", ["t"], ["y"], "sum"))
        graph += field(2, "expand") + field(5, int64_initializer("shape", shape))
        graph += field(11, value_info("x", [1])) + field(12, value_info("y", [1] * len(shape)))
    else:
        shape = [int(d) for d in args.shape.split(",")]
        n = args.relu_chain
        names = ["x"] + [f"t{i}" for i in range(1, n)] + ["y"]
        for i in range(n):
            graph += field(1, node("Relu", [names[i]], [names[i + 1]], f"relu{i}"))
        graph += field(2, "relu_chain")
        graph += field(11, value_info("x", shape)) + field(12, value_info("y", shape))
    # ModelProto{ir_version=1, graph=7, opset_import=8: {version=2}}
    model = integer(1, 8) + field(7, bytes(graph)) + field(8, integer(2, 17))
    with open(args.out, "wb") as f:
        f.write(model)


if __name__ == "__main__":
    main()
