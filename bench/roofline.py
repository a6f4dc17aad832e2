"""How far a model's kernels are from this machine's limits, in the same run: runs
`kiln-bench machine` (the fp32 FMA peak and the memory read bandwidth at the thread count),
then a kiln-run or kiln-generate command with --profile, and prints each profiled kernel's
GFLOP/s as a fraction of the FMA peak and its GB/s as a fraction of the read bandwidth.

Per session it also prints the roofline bound: the run time if every kernel reached the
larger of its two fractions at 100% (time between kernels kept), and so the largest
speed-up any schedule could buy. The GB/s and GFLOP/s are the compiler's traffic and FLOP
estimates over the measured time (README, kiln-run --profile); a kernel whose data stays
in the caches can beat the read bandwidth (shown as over 100%, counted as at its limit), so
for such kernels the bound is loose. Integer dot products (int8 activations) are counted
as FLOP against the fp32 FMA peak.

usage: python bench/roofline.py [--threads 2] [--top 12] -- COMMAND...
  e.g. python bench/roofline.py -- build/bin/kiln-run model.kiln --input x=x.npy --threads 2 --repeat 20
       python bench/roofline.py -- build/bin/kiln-generate gemma.gguf -p "Hello" -n 32 --temp 0 --threads 2
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import machine  # noqa: E402

# "decode: 47 runs of 382 dispatches, 507.682 ms (10.802 ms per run)"
SESSION = re.compile(r"^(\S+): (\d+) runs? of \d+ dispatches, ([0-9.]+) (us|ms|s) ")
# "  inside kernels 503.216 ms (99.1%); between kernels 4.466 ms (0.9%, ...)"
BETWEEN = re.compile(r"between kernels ([0-9.]+) (us|ms|s)")
SCALE = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_profile(text):
    """The sessions of a --profile table: name, runs, total and between-kernel ms, and rows
    (kernel, what and where, total ms from calls x mean, GB/s, GFLOP/s)."""
    sessions = []
    for line in text.splitlines():
        match = SESSION.match(line)
        if match:
            sessions.append({"name": match.group(1), "runs": int(match.group(2)),
                             "total_ms": float(match.group(3)) * SCALE[match.group(4)],
                             "between_ms": 0.0, "rows": []})
            continue
        if not sessions:
            continue
        match = BETWEEN.search(line)
        if match and line.lstrip().startswith("inside kernels"):
            sessions[-1]["between_ms"] = float(match.group(1)) * SCALE[match.group(2)]
            continue
        fields = line.split()
        # kernel, what..., where, then dispatches calls total mean share% GB/s GFLOP/s.
        if len(fields) >= 9 and fields[0].startswith("kiln_k") and fields[-3].endswith("%"):
            try:
                calls, mean_us = int(fields[-6]), float(fields[-4])
                # A kernel that does no arithmetic (a pad, a copy) prints "-" for GFLOP/s.
                gbs, gflops = float(fields[-2]), 0.0 if fields[-1] == "-" else float(fields[-1])
            except ValueError:
                continue
            sessions[-1]["rows"].append({"kernel": fields[0], "what": " ".join(fields[1:-7]),
                                         "total_ms": calls * mean_us / 1e3, "gbs": gbs, "gflops": gflops})
    return sessions


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2,
                        help="thread count of the machine's limits (give the command the same)")
    parser.add_argument("--top", type=int, default=12, help="kernel rows printed per session")
    parser.add_argument("--bin", default=os.path.join(HERE, "..", "build", "bin"))
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the kiln-run or kiln-generate command after --")

    limits = machine.measure(args.bin, threads=[args.threads])
    peak = machine.fma_peak(limits, args.threads)
    bandwidth = machine.read_bandwidth(limits, args.threads)
    with tempfile.TemporaryDirectory() as work:
        if "--profile" not in command:
            command = command + ["--profile"]
        if "--trace" not in command:
            command = command + ["--trace", os.path.join(work, "trace.json")]
        ran = subprocess.run(command, capture_output=True, text=True)
    if ran.returncode != 0:
        sys.exit(f"the command failed (exit {ran.returncode}):\n{ran.stdout}{ran.stderr}")
    sessions = parse_profile(ran.stdout + ran.stderr)  # kiln-generate prints it on stderr
    if not sessions:
        sys.exit(f"no --profile table in the command's output:\n{ran.stdout}")

    print(f"limits at {args.threads} threads: fp32 FMA peak {peak:.1f} GFLOP/s, "
          f"read bandwidth {bandwidth:.1f} GB/s")
    for session in sessions:
        runs = session["runs"]
        print(f"\n{session['name']}: {session['total_ms'] / runs:.3f} ms per run over {runs} runs")
        print(f"  {'kernel':<10} {'what, where':<34} {'share':>6} {'GFLOP/s':>8} {'of peak':>8} "
              f"{'GB/s':>7} {'of bw':>6}  bound")
        kernels_ms = sum(row["total_ms"] for row in session["rows"])
        ideal_ms = 0.0
        for i, row in enumerate(session["rows"]):
            compute = row["gflops"] / peak
            memory = row["gbs"] / bandwidth
            reached = min(max(compute, memory), 1.0)
            ideal_ms += row["total_ms"] * reached
            if i < args.top:
                bound = "compute" if compute >= memory else "memory"
                print(f"  {row['kernel']:<10} {row['what'][:34]:<34} "
                      f"{row['total_ms'] / kernels_ms * 100:>5.1f}% {row['gflops']:>8.2f} "
                      f"{compute * 100:>7.0f}% {row['gbs']:>7.2f} {memory * 100:>5.0f}%  {bound}")
        if len(session["rows"]) > args.top:
            print(f"  ... {len(session['rows']) - args.top} more kernels")
        now = kernels_ms + session["between_ms"]
        best = ideal_ms + session["between_ms"]
        print(f"  every kernel at its limit: {best / runs:.3f} ms per run instead of "
              f"{now / runs:.3f}: at most {now / best:.2f}x faster")


if __name__ == "__main__":
    main()
