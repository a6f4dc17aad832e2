"""The products with packed GGUF weights (or f16, bf16, f32 ones) that a language
model's decode and prefill spend their time in, one kernel at a time, against the machine's limits measured in the
same run: each case chains N products with distinct weights (so that their bytes come
from memory, not a cache) over random valid blocks, is compiled by kiln-compile and
timed by kiln-run --profile; the report gives each kernel's mean time, the GB/s of
weights it read and the fraction of the measured read bandwidth (one row: a
matrix-vector product, memory-bound at best), or its GFLOP/s and the fraction of the
fp32 FMA peak (several rows).

usage: python bench/kernels.py [--threads 1 2] [--types q4_0 q8_0 f16 ...] [--rows 1 128]
       [--activations int8|f32] [--bin BUILD/bin]
       (run with the test venv's python: "$(bash scripts/setup.sh --print-venv)/bin/python")
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import machine  # noqa: E402  (bench/machine.py, beside this file)

# ggml's block sizes (values, bytes) and where a block keeps its f16 scale(s).
BLOCKS = {"q4_0": (32, 18, (0,)), "q8_0": (32, 34, (0,)), "q5_0": (32, 22, (0,)),
          "q4_k": (256, 144, (0, 2)), "q6_k": (256, 210, (208,))}
# Unquantized weights: numpy's dtype for the bytes and the MLIR element type.
FLOATS = {"f16": (np.float16, "f16"), "bf16": (np.uint16, "bf16"), "f32": (np.float32, "f32")}
# (output columns, depth, products): a TinyLlama-shaped FFN and Gemma 3 270M's.
SHAPES = [(5632, 2048, 6), (2048, 640, 48)]


def weight_bytes(qtype, columns, depth, rng):
    """Random valid weights of `qtype`: packed blocks with small scales, or floats."""
    if qtype in FLOATS:
        values = rng.standard_normal((columns, depth)).astype(np.float32) * 0.05
        if qtype == "bf16":  # the high half of each f32
            return (values.view(np.uint32) >> 16).astype(np.uint16).tobytes()
        return values.astype(FLOATS[qtype][0]).tobytes()
    values, size, scales = BLOCKS[qtype]
    blocks = rng.integers(0, 256, size=(columns * depth // values, size), dtype=np.uint8)
    small = np.frombuffer(np.float16(0.001).tobytes(), np.uint8)
    for at in scales:
        blocks[:, at:at + 2] = small
    return blocks.tobytes()


def write_case(work, qtype, columns, depth, count, rows, rng):
    # Distinct bytes per product: copies of one matrix let BF16 and F16 rows differ by
    # 1.7x where distinct weights give 1.1-1.2x.
    matrices = [weight_bytes(qtype, columns, depth, rng) for _ in range(count)]
    matrix = matrices[0]
    with open(os.path.join(work, "w.bin"), "wb") as f:
        for m in matrices:
            f.write(m)
    element = FLOATS[qtype][1] if qtype in FLOATS else f"!kiln.quant<{qtype}>"
    t = f"tensor<{columns}x{depth}x{element}>"
    widened = f"tensor<{columns}x{depth}xf32>"
    out = f"tensor<{rows}x{columns}xf32>"
    lines = ["#mk = affine_map<(m, n, k) -> (m, k)>", "#nk = affine_map<(m, n, k) -> (n, k)>",
             "#mn = affine_map<(m, n, k) -> (m, n)>",
             f'func.func @main(%x: tensor<{rows}x{depth}xf32> {{kiln.name = "x"}}) '
             f'-> ({out} {{kiln.name = "y"}}) {{',
             "  %zero = arith.constant 0.0 : f32"]
    total = None
    for i in range(count):
        lines.append(f'  %w{i} = kiln.weight "w{i}" from "w.bin"[{i * len(matrix)}] : {t}')
        if qtype == "f32":  # read as stored
            lines.append(f"  %d{i} = tensor.cast %w{i} : {t} to {t}")
        elif qtype in FLOATS:  # widened as the reader's loads (F16/BF16 GGUF tensors)
            lines.append(f"  %d{i} = arith.extf %w{i} : {t} to {widened}")
        else:
            lines.append(f"  %d{i} = kiln.dequantize %w{i} : {t}")
        lines += [
                  f"  %e{i} = tensor.empty() : {out}",
                  f"  %a{i} = linalg.fill ins(%zero : f32) outs(%e{i} : {out}) -> {out}",
                  f"  %y{i} = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %d{i} : "
                  f"tensor<{rows}x{depth}xf32>, tensor<{columns}x{depth}xf32>) outs(%a{i} : {out}) -> {out}"]
        if total is None:
            total = f"%y{i}"
        else:
            lines.append(f"  %s{i} = arith.addf {total}, %y{i} : {out}")
            total = f"%s{i}"
    lines += [f"  return {total} : {out}", "}"]
    with open(os.path.join(work, "case.mlir"), "w") as f:
        f.write("\n".join(lines) + "\n")
    np.save(os.path.join(work, "x.npy"), rng.standard_normal((rows, depth)).astype(np.float32))
    return len(matrix)


def profile(bin_dir, work, threads, activations):
    artifact = os.path.join(work, "case.kiln")
    subprocess.run([os.path.join(bin_dir, "kiln-compile"), os.path.join(work, "case.mlir"),
                    f"--activations={activations}", "-o", artifact], check=True,
                   capture_output=True)
    ran = subprocess.run([os.path.join(bin_dir, "kiln-run"), artifact, "--input",
                          os.path.join(work, "x.npy"), "--threads", str(threads), "--repeat",
                          "20", "--profile", "--trace", os.path.join(work, "trace.json")],
                         check=True, capture_output=True, text=True)
    # The product's row of the profile table: "... mean us  share  GB/s  GFLOP/s".
    for line in ran.stdout.splitlines():
        if re.search(r"\bmatmul \d+x\d+x\d+ ", line):
            fields = line.split()
            return float(fields[-4]), float(fields[-2]), float(fields[-1])
    raise RuntimeError(f"no matmul row in kiln-run's profile:\n{ran.stdout}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--types", nargs="+", default=sorted(BLOCKS), choices=sorted(BLOCKS) + sorted(FLOATS))
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 128])
    parser.add_argument("--activations", choices=["int8", "f32"], default="int8")
    parser.add_argument("--bin", default=os.path.join(HERE, "..", "build", "bin"))
    args = parser.parse_args()
    limits = machine.measure(args.bin, args.threads)
    rng = np.random.default_rng(0)
    print(f"activations {args.activations} (one-row products); mean of 20 runs")
    print(f"{'type':>5} {'rows':>4} {'columns x depth':>16} {'threads':>7} {'mean us':>9} "
          f"{'GB/s':>7} {'GFLOP/s':>8}  fraction of the machine's limit")
    for qtype in args.types:
        for columns, depth, count in SHAPES:
            if depth % BLOCKS.get(qtype, (16,))[0]:
                continue
            for rows in args.rows:
                with tempfile.TemporaryDirectory() as work:
                    write_case(work, qtype, columns, depth, count if rows == 1 else 2, rows, rng)
                    for threads in args.threads:
                        mean, gbs, gflops = profile(args.bin, work, threads, args.activations)
                        if rows == 1:
                            limit = f"{gbs / machine.read_bandwidth(limits, threads) * 100:.0f}% of read bandwidth"
                        else:
                            limit = f"{gflops / machine.fma_peak(limits, threads) * 100:.0f}% of FMA peak"
                        print(f"{qtype:>5} {rows:>4} {f'{columns}x{depth}':>16} {threads:>7} "
                              f"{mean:>9.1f} {gbs:>7.2f} {gflops:>8.2f}  {limit}")


if __name__ == "__main__":
    main()
