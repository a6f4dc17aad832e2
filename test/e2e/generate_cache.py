"""kiln-generate's compile cache: two processes started at once on an empty cache
compile the model once between them (the second waits on the lock, then uses the
first one's artifact) and generate the same tokens; a cached artifact that is
truncated, or has a flipped bit, is found unusable, compiled again and replaced, and
the tokens stay numpy's greedy ones; a compile removes the artifacts of other
compilers for the same model and options (not other variants); a tuning database that
appears or changes after a model was cached (kiln-compile --tune=use reads it) has the
model compiled again, once. A tiny random-weight llama with the real LLaMA vocabulary
(generate_vs_numpy.py's model).

usage: generate_cache.py BIN_DIR WORK_DIR VOCAB_GGUF
"""
import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate_vs_numpy  # noqa: E402  (the vocabulary and its copy)
import llama_vs_numpy as llama  # noqa: E402  (the model writer and numpy forward pass)

PROMPT, STEPS = "Once upon a time", 4


def main():
    bin_dir, work, vocab_path = sys.argv[1], sys.argv[2], sys.argv[3]
    vocab = generate_vs_numpy.vocabulary_size(vocab_path)
    if vocab is None:
        return 77
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    c = llama.Config("cached", vocab=vocab, dim=32, heads=2, kv_heads=1, ffn=48, blocks=1,
                     context=32)
    path = os.path.join(work, "cached.gguf")
    model = llama.Model(c, path)
    generate_vs_numpy.with_vocabulary(model, vocab_path)
    model.write()
    cache = os.path.join(work, "cache")
    # The tuning database kiln-compile reads: none until the last check.
    tuning_db = os.path.join(work, "tuning.sqlite")
    os.environ["KILN_TUNING_DB"] = tuning_db

    ids = subprocess.run([os.path.join(bin_dir, "kiln-tokenize"), "--bos", path, PROMPT],
                         capture_output=True, text=True, check=True).stdout.split()
    tokens = [int(t) for t in ids]
    expected = []
    for _ in range(STEPS):
        logits = llama.forward(c, model.weights, np.array(tokens), np.arange(len(tokens)))[-1]
        expected.append(int(np.argmax(logits)))
        tokens.append(expected[-1])

    def start():
        stats = os.path.join(work, f"stats-{start.runs}.json")
        start.runs += 1
        command = [os.path.join(bin_dir, "kiln-generate"), path, "-p", PROMPT, "-n", str(STEPS),
                   "--ctx", "32", "--temp", "0", "--activations", "f32", "--cache-dir", cache,
                   "--stats-json", stats]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True), stats
    start.runs = 0

    def finish(started):
        process, stats = started
        out, err = process.communicate()
        if process.returncode != 0:
            print(f"FAIL kiln-generate exited {process.returncode}:\n{out}{err}")
            sys.exit(1)
        with open(stats) as f:
            return json.load(f)["tokens"], err

    def cached_artifacts():
        return glob.glob(os.path.join(cache, "*.kiln"))

    failed = 0
    # Two processes at once on an empty cache.
    both = [start(), start()]
    results = [finish(s) for s in both]
    compiles = sum("compiling" in err for _, err in results)
    leftovers = [f for f in os.listdir(cache) if f.endswith(".partial")]
    if (any(got != expected for got, _ in results) or compiles != 1 or
            len(cached_artifacts()) != 1 or leftovers):
        print(f"FAIL concurrent: tokens {[got for got, _ in results]} (numpy {expected}), "
              f"{compiles} compiles, cache {sorted(os.listdir(cache))}")
        for _, err in results:
            print(err)
        failed += 1
    else:
        print(f"PASS two concurrent processes: one compile, one artifact, tokens {expected}")

    artifact = cached_artifacts()[0]
    size = os.path.getsize(artifact)
    # What an older kiln-compile left: the same model and options under another
    # compiler's hash (removed by the next compile), and another variant of the model
    # (kept).
    name = os.path.basename(artifact)[:-len("-0123456789abcdef.kiln")]
    stale = os.path.join(cache, name + "-0123456789abcdef.kiln")
    other_variant = os.path.join(cache, name.replace("-f32", "") + "-0123456789abcdef.kiln")
    for fake in (stale, stale + ".lock", other_variant):
        with open(fake, "wb") as f:
            f.write(b"an old artifact")

    def truncate(data):
        return data[:len(data) // 2]

    def flip_bit(data):  # a bit in the middle of the file: weights or code
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 0x10]) + data[middle + 1:]

    for label, damage in (("truncated", truncate), ("bit-flipped", flip_bit)):
        with open(artifact, "rb") as f:
            data = f.read()
        with open(artifact, "wb") as f:
            f.write(damage(data))
        got, err = finish(start())
        kept = sorted(cached_artifacts()) == sorted([artifact, other_variant])
        if (got != expected or "cannot use the cached artifact" not in err or "compiling" not in err or
                os.path.getsize(artifact) != size or not kept or os.path.exists(stale + ".lock")):
            print(f"FAIL {label} cached artifact: tokens {got} (numpy {expected}), "
                  f"size {os.path.getsize(artifact)} (was {size}):\n{err}")
            failed += 1
        else:
            print(f"PASS {label} cached artifact: recompiled ({err.splitlines()[0]}), "
                  f"tokens {got}; an older compiler's artifact of it removed, another "
                  f"variant kept")

    # The repaired artifact is used as it is.
    got, err = finish(start())
    if got != expected or "compiling" in err:
        print(f"FAIL the repaired artifact: tokens {got} (numpy {expected}):\n{err}")
        failed += 1
    else:
        print("PASS the repaired artifact is used without compiling")

    # A tuning database appears (kiln-tune --import of no records creates one): the next
    # run compiles again, the one after uses that artifact (kiln-compile's reading the
    # database must not change what the cache key sees).
    empty = os.path.join(work, "no-records.jsonl")
    open(empty, "w").close()
    subprocess.run([os.path.join(bin_dir, "kiln-tune"), "--import", empty], check=True,
                   capture_output=True)
    first, first_err = finish(start())
    second, second_err = finish(start())
    if (first != expected or second != expected or "compiling" not in first_err or
            "compiling" in second_err):
        print(f"FAIL tuning database created after caching: tokens {first}, {second} (numpy "
              f"{expected}):\n{first_err}\n{second_err}")
        failed += 1
    else:
        print("PASS a tuning database created after caching: compiled again once, then cached")
    print(f"{5 - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
