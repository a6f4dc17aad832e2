"""Checks a kiln --profile trace against Chrome's trace event format (what Perfetto and
chrome://tracing read) and prints what FileCheck should see: the tracks, the spans, and
per kernel the names of its events (what it computes), its calls and their arguments.

usage: check-chrome-trace.py TRACE.json
"""
import json
import sys
from collections import defaultdict


def fail(message):
    print(f"BAD TRACE: {message}")
    sys.exit(1)


def main():
    with open(sys.argv[1]) as f:
        trace = json.load(f)
    if trace.get("displayTimeUnit") != "ms" or not isinstance(trace.get("traceEvents"), list):
        fail("expected {\"traceEvents\": [...], \"displayTimeUnit\": \"ms\"}")
    tracks, spans, kernels = {}, defaultdict(list), defaultdict(list)
    for e in trace["traceEvents"]:
        if e.get("ph") == "M":
            if e["name"] == "thread_name":
                tracks[e["tid"]] = e["args"]["name"]
            continue
        for key, kind in (("name", str), ("ph", str), ("ts", (int, float)),
                          ("dur", (int, float)), ("pid", int), ("tid", int)):
            if not isinstance(e.get(key), kind):
                fail(f"event {e} lacks {key} ({kind})")
        if e["ph"] != "X" or e["ts"] < 0 or e["dur"] < 0:
            fail(f"event {e} is not a complete event at a time >= 0")
        (kernels if e.get("cat") == "kernel" else spans)[e["tid"]].append(e)
    for tid, name in sorted(tracks.items()):
        print(f"track {tid} {name}: {len(spans[tid])} spans, {len(kernels[tid])} kernel calls")
        for span in spans[tid]:
            print(f"span {span['name']}")
        # Every kernel call lies inside one of the track's spans (the tool's runs).
        for k in kernels[tid]:
            if not any(s["ts"] <= k["ts"] and k["ts"] + k["dur"] <= s["ts"] + s["dur"] + 1e-3
                       for s in spans[tid]):
                fail(f"kernel call {k} is outside every span of track {name}")
        calls = defaultdict(list)
        for k in kernels[tid]:
            calls[k["args"]["kernel"]].append(k)
        for kernel, events in sorted(calls.items()):
            names = sorted({e["name"] for e in events})
            args = {json.dumps({key: value for key, value in e["args"].items()
                                if key != "kernel"}, sort_keys=True) for e in events}
            print(f"kernel {kernel} ({' | '.join(names)}): {len(events)} calls, "
                  f"args {' | '.join(sorted(args))}")
    print(f"dropped {trace['otherData']['dropped_trace_events']}")


if __name__ == "__main__":
    main()
