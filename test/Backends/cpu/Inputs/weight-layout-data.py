"""Writes w.bin (16 bytes of header, then a float32 [2, 3, 4] tensor), an input x and
the expected y = x + numpy.transpose(w, (2, 0, 1)) (numpy's axes mean what
linalg.transpose's permutation means: result dimension i is input dimension axes[i])."""
import struct
import sys

out = sys.argv[1]
w = [[[100 * i + 10 * j + k for k in range(4)] for j in range(3)] for i in range(2)]
flat = [float(w[i][j][k]) for i in range(2) for j in range(3) for k in range(4)]
with open(f"{out}/w.bin", "wb") as f:
    f.write(b"\xff" * 16 + struct.pack("<24f", *flat))


def npy(path, values, shape):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % "".join(
        f"{d}, " for d in shape)
    header += " " * (63 - len(header) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack(f"<{len(values)}f", *values))


x = [0.5 * n for n in range(24)]
# y[a][b][c] = x[a][b][c] + w[b][c][a]: result dims (4, 2, 3) are w's dims (2, 0, 1).
y = [x[(a * 2 + b) * 3 + c] + w[b][c][a] for a in range(4) for b in range(2) for c in range(3)]
npy(f"{out}/x.npy", x, (4, 2, 3))
npy(f"{out}/y.npy", y, (4, 2, 3))
