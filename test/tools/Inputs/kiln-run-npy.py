# Writes the .npy inputs and independently computed expected outputs for
# kiln-run.test (standard library only: the test machines have no numpy).
#   python3 kiln-run-npy.py OUTPUT_DIR
import os
import struct
import sys

# The .npy data type of each struct format character used here.
DESCR = {"f": "<f4", "d": "<f8", "B": "|u1", "b": "|i1", "i": "<i4"}


def npy_bytes(fmt, shape, values, version=(1, 0), fortran_order=False, descr=None):
    """The bytes of a .npy file (numpy.lib.format, versions 1.0-3.0)."""
    shape_text = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
    header = (f"{{'descr': '{descr or DESCR[fmt]}', 'fortran_order': {fortran_order}, "
              f"'shape': {shape_text}, }}")
    length_format = "<H" if version[0] == 1 else "<I"
    prefix = 6 + 2 + struct.calcsize(length_format)
    padding = -(prefix + len(header) + 1) % 64
    header = header + " " * padding + "\n"
    return (b"\x93NUMPY" + bytes(version) + struct.pack(length_format, len(header)) +
            header.encode("latin1") + struct.pack("<%d%s" % (len(values), fmt), *values))


def write(directory, name, data):
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def f32(x):
    """Rounds a Python float to the nearest binary32 value, as the kernels store it."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def main():
    out = sys.argv[1]
    a = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
    b = [[1.0, 0.5, -2.0, 0.0], [-1.0, 2.0, 0.5, 1.0], [0.25, -0.5, 1.0, 3.0]]
    bias = [f32(x) for x in (0.1, -0.2, 0.3, -4.0)]
    mask = [200, 0, 127, 255]  # uint8 data for the model's i8 input

    y = [[max(f32(sum(a[i][k] * b[k][j] for k in range(3)) + bias[j]), 0.0)
          for j in range(4)] for i in range(2)]
    row_sum = [sum(row) for row in a]
    # i8 + 1 wraps (127 + 1 = -128); written as int8, compared by bytes.
    mask_plus_one = [struct.unpack("b", bytes([(m + 1) & 0xFF]))[0] for m in mask]

    flat = lambda rows: [x for row in rows for x in row]
    write(out, "a.npy", npy_bytes("f", (2, 3), flat(a)))
    write(out, "b.npy", npy_bytes("f", (3, 4), flat(b), version=(2, 0)))
    write(out, "bias.npy", npy_bytes("f", (4,), bias, version=(3, 0)))
    write(out, "mask.npy", npy_bytes("B", (4,), mask))
    write(out, "y.npy", npy_bytes("f", (2, 4), flat(y)))
    write(out, "row_sum.npy", npy_bytes("f", (2,), row_sum))
    write(out, "mask_plus_one.npy", npy_bytes("b", (4,), mask_plus_one))

    # A wrong expectation: y[1][2] off by 0.5.
    wrong = [row[:] for row in y]
    wrong[1][2] += 0.5
    write(out, "y-wrong.npy", npy_bytes("f", (2, 4), flat(wrong)))

    # Inputs that must be rejected.
    write(out, "a-transposed.npy", npy_bytes("f", (3, 2), flat(a)))
    write(out, "a-f64.npy", npy_bytes("d", (2, 3), flat(a)))
    write(out, "a-int32.npy", npy_bytes("i", (2, 3), [1] * 6))
    write(out, "a-fortran.npy", npy_bytes("f", (2, 3), flat(a), fortran_order=True))
    write(out, "a-big-endian.npy", npy_bytes("f", (2, 3), flat(a), descr=">f4"))
    whole = npy_bytes("f", (2, 3), flat(a))
    write(out, "a-truncated-data.npy", whole[:-5])
    write(out, "a-truncated-header.npy", whole[:40])
    write(out, "a-bad-header.npy", whole.replace(b"'shape': (2, 3)", b"'shape': [2, 3]"))
    write(out, "not-npy.npy", b"P5\n2 3\n255\n")


if __name__ == "__main__":
    main()
