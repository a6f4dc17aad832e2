"""The machine every benchmark names and measures itself against, in the same run:
`kiln-bench machine` (tools/kiln-bench) prints the CPU, its vector features, the memory
read bandwidth and the fp32 FMA peak at each thread count.

    limits = machine.measure(bin_dir, threads=[1, 2])   # prints the lines, returns the JSON
    machine.read_bandwidth(limits, 2)                   # GB/s at 2 threads
"""
import json
import os
import subprocess


def measure(bin_dir, threads=(1, 2), megabytes=512, repeat=3):
    ran = subprocess.run([os.path.join(bin_dir, "kiln-bench"), "machine", "--threads",
                          ",".join(str(t) for t in threads), "--megabytes", str(megabytes),
                          "--repeat", str(repeat)], check=True, capture_output=True, text=True)
    lines = ran.stdout.strip().splitlines()
    for line in lines[:-1]:
        print(line)
    return json.loads(lines[-1])


def _figure(limits, threads, key):
    for row in limits["threads"]:
        if row["threads"] == threads:
            return row[key]
    raise KeyError(f"kiln-bench did not measure {threads} threads")


def read_bandwidth(limits, threads):
    """GB/s (1e9 bytes) of streaming reads at `threads` threads."""
    return _figure(limits, threads, "read_gb_per_s")


def fma_peak(limits, threads):
    """fp32 GFLOP/s of independent FMAs at `threads` threads."""
    return _figure(limits, threads, "fma_gflop_per_s")
