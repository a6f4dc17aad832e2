"""Writes the inputs of f16-weights.test (standard library only): w.bin with two f16
[4, 64] weights, one all finite (zero, subnormals, the largest half, both signs) and
one with an infinity in row 1 and a NaN in row 2; x.npy, a [1, 64] f32 row; and
finite.npy, the finite weight's product with it computed here in float64 (an
independent reference, rounded to f32 once)."""
import math
import os
import struct
import sys

out = sys.argv[1]
K, N = 64, 4


def npy(path, shape, values):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % "".join(
        f"{d}, " for d in shape)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack(f"<{len(values)}f", *values))


def half(v):  # the value an f16 holds
    return struct.unpack("<e", struct.pack("<e", v))[0]


specials = [0.0, -0.0, 6e-8, -3e-6, 6.1e-5, 65504.0, -65504.0, 1.0, -2.5, 0.1]
finite = [[half(specials[(r * 7 + k) % len(specials)] if k % 3 == 0 else (k - 32) * 0.03125 * (r + 1))
           for k in range(K)] for r in range(N)]
special = [[half((k % 5) * 0.25 - 0.5) for k in range(K)] for r in range(N)]
special[1][3] = math.inf
special[2][5] = math.nan
x = [1.0 + k / 64.0 for k in range(K)]  # positive: inf * x stays inf
with open(os.path.join(out, "w.bin"), "wb") as f:
    for matrix in (finite, special):
        for row in matrix:
            f.write(struct.pack(f"<{K}e", *row))
npy(os.path.join(out, "x.npy"), [1, K], x)
npy(os.path.join(out, "finite.npy"), [1, N], [sum(w * v for w, v in zip(row, x)) for row in finite])
