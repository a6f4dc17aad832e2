# Writes dedup.mlir's weights file, inputs and expected outputs (standard library only).
#   python3 dedup-data.py OUTPUT_DIR
import importlib.util
import os
import struct
import sys

# The .npy writer of kiln-run.test.
spec = importlib.util.spec_from_file_location(
    "kiln_run_npy",
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "tools", "Inputs", "kiln-run-npy.py"))
npy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(npy)


def matrix(rows, cols, seed):
    # Quarters of small integers: every product and sum below is exact in f32.
    return [[((i * 3 + j * 5 + seed) % 7 - 3) * 0.25 for j in range(cols)] for i in range(rows)]


def plus_product(a, w):
    """a + a @ w, as the dispatches compute it."""
    return [[a[i][j] + sum(a[i][k] * w[k][j] for k in range(len(w))) for j in range(len(w[0]))]
            for i in range(len(a))]


def main():
    out = sys.argv[1]
    flat = lambda rows: [x for row in rows for x in row]
    w1, w2, w3 = matrix(8, 8, 1), matrix(8, 8, 2), matrix(8, 8, 4)
    x, v = matrix(4, 8, 0), matrix(2, 8, 3)
    with open(os.path.join(out, "dedup.weights"), "wb") as f:
        for w in (w1, w2, w3):
            f.write(struct.pack("<64f", *flat(w)))
    npy.write(out, "x.npy", npy.npy_bytes("f", (4, 8), flat(x)))
    npy.write(out, "v.npy", npy.npy_bytes("f", (2, 8), flat(v)))
    npy.write(out, "y.npy", npy.npy_bytes("f", (4, 8), flat(plus_product(plus_product(x, w1), w2))))
    npy.write(out, "z.npy", npy.npy_bytes("f", (2, 8), flat(plus_product(v, w3))))
    npy.write(out, "twice.npy", npy.npy_bytes("f", (4, 8), [2 * a for a in flat(x)]))
    npy.write(out, "thrice.npy", npy.npy_bytes("f", (4, 8), [3 * a for a in flat(x)]))


if __name__ == "__main__":
    main()
