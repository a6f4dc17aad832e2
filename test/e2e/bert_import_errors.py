"""The Hugging Face BERT importer's errors: kiln-compile on model directories written
here with one thing wrong each must fail with a message naming the file, key or tensor
at fault (and never crash); kiln-embed's usage errors likewise.

usage: bert_import_errors.py BIN_DIR WORK_DIR
"""
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

CONFIG = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 11,
          "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
          "intermediate_size": 12, "max_position_embeddings": 6, "type_vocab_size": 2,
          "layer_norm_eps": 1e-12, "hidden_act": "gelu"}


def shapes(config):
    h, f = config["hidden_size"], config["intermediate_size"]
    out = {"embeddings.word_embeddings.weight": (config["vocab_size"], h),
           "embeddings.position_embeddings.weight": (config["max_position_embeddings"], h),
           "embeddings.token_type_embeddings.weight": (config["type_vocab_size"], h),
           "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,)}
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for s in ("query", "key", "value"):
            out[p + f"attention.self.{s}.weight"], out[p + f"attention.self.{s}.bias"] = (h, h), (h,)
        out.update({p + "attention.output.dense.weight": (h, h),
                    p + "attention.output.dense.bias": (h,),
                    p + "attention.output.LayerNorm.weight": (h,),
                    p + "attention.output.LayerNorm.bias": (h,),
                    p + "intermediate.dense.weight": (f, h), p + "intermediate.dense.bias": (f,),
                    p + "output.dense.weight": (h, f), p + "output.dense.bias": (h,),
                    p + "output.LayerNorm.weight": (h,), p + "output.LayerNorm.bias": (h,)})
    return out


def write_model(directory, config=CONFIG, tensors=None, dtype="F32", pooling=None,
                raw_weights=None):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        f.write(config if isinstance(config, str) else json.dumps(config))
    if pooling is not None:
        os.makedirs(os.path.join(directory, "1_Pooling"), exist_ok=True)
        with open(os.path.join(directory, "1_Pooling", "config.json"), "w") as f:
            json.dump(pooling, f)
    path = os.path.join(directory, "model.safetensors")
    if raw_weights is not None:
        with open(path, "wb") as f:
            f.write(raw_weights)
        return
    tensors = shapes(CONFIG) if tensors is None else tensors
    header, blobs, offset = {}, [], 0
    for name, shape in tensors.items():
        size = int(np.prod(shape)) * (8 if dtype == "I64" else 4 if dtype == "F32" else 2)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        blobs.append(bytes(size))
        offset += size
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def with_changes(base, **changes):
    out = dict(base)
    out.update(changes)
    return out


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    bin_dir, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    good = shapes(CONFIG)
    wrong_shape = dict(good)
    wrong_shape["encoder.layer.0.attention.self.key.weight"] = (8, 7)
    missing = dict(good)
    del missing["encoder.layer.0.output.dense.bias"]
    extra = dict(good)
    extra["cls.predictions.bias"] = (11,)
    cases = [
        ("missing_config", None, "config.json"),
        ("bad_json", dict(config="{not json"), "config.json' is not valid JSON"),
        ("unknown_architecture",
         dict(config=with_changes(CONFIG, architectures=["GPT2LMHeadModel"], model_type="gpt2")),
         "unsupported architecture 'GPT2LMHeadModel'"),
        ("hidden_not_string", dict(config=with_changes(CONFIG, hidden_size="8")),
         "key 'hidden_size' is string, expected an integer"),
        ("heads_do_not_divide", dict(config=with_changes(CONFIG, num_attention_heads=3)),
         "hidden_size (8) is not a multiple of num_attention_heads (3)"),
        ("missing_key", dict(config={k: v for k, v in CONFIG.items() if k != "intermediate_size"}),
         "key 'intermediate_size' is missing"),
        ("tanh_gelu", dict(config=with_changes(CONFIG, hidden_act="gelu_new")),
         "hidden_act 'gelu_new' is not supported"),
        ("relative_positions",
         dict(config=with_changes(CONFIG, position_embedding_type="relative_key")),
         "position_embedding_type 'relative_key' is not supported"),
        ("wrong_shape", dict(tensors=wrong_shape),
         "tensor 'encoder.layer.0.attention.self.key.weight' has shape [8, 7], expected [8, 8]"),
        ("missing_tensor", dict(tensors=missing),
         "missing tensor 'encoder.layer.0.output.dense.bias' (expected shape [8])"),
        ("unused_tensor", dict(tensors=extra),
         "tensor 'cls.predictions.bias' is not part of the graph kiln builds"),
        ("integer_weights", dict(dtype="I64"),
         "has dtype I64, which kiln does not import (supported: F32, F16, BF16)"),
        ("corrupt_weights", dict(raw_weights=b"\x10\x00\x00\x00\x00\x00\x00\x00{}"),
         "safetensors: the header size at byte 0 is 16 but only 2 bytes follow it"),
        ("cls_pooling",
         dict(pooling={"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}),
         "pooling mode 'pooling_mode_cls_token' is not implemented"),
        ("no_pooling", dict(pooling={"pooling_mode_mean_tokens": False}),
         "no pooling mode is enabled"),
        ("sequence_too_long", dict(args=["--seq-len", "7"]),
         "sequence length 7 is outside the model's 6 positions"),
    ]
    failures = 0
    for name, spec, expected in cases:
        directory = os.path.join(work, name)
        spec = dict(spec) if spec is not None else None
        args = spec.pop("args", []) if spec else []
        if spec is None:
            os.makedirs(directory, exist_ok=True)
        else:
            write_model(directory, **spec)
        ran = subprocess.run([os.path.join(bin_dir, "kiln-compile"), directory, "--emit=mlir",
                              "-o", os.devnull, *args], capture_output=True, text=True)
        ok = ran.returncode == 1 and expected in ran.stderr
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'} {name}: exit {ran.returncode}"
              + ("" if ok else f", expected '{expected}' in:\n{ran.stderr}"))
    # The same directory without faults imports.
    directory = os.path.join(work, "good")
    write_model(directory, pooling={"pooling_mode_mean_tokens": True})
    ran = subprocess.run([os.path.join(bin_dir, "kiln-compile"), directory, "--emit=mlir",
                          "-o", os.devnull], capture_output=True, text=True)
    ok = ran.returncode == 0
    failures += not ok
    print(f"{'PASS' if ok else 'FAIL'} good: exit {ran.returncode} {ran.stderr}")

    embed = os.path.join(bin_dir, "kiln-embed")
    usage = [
        ([], 2, "no model given"),
        ([directory], 2, "no text given"),
        ([directory, "x", "--batch", "0"], 2, "--batch expects an integer >= 1, got '0'"),
        ([directory, "x", "--max-length", "1"], 2, "--max-length expects an integer >= 2"),
        ([directory, "x", "--bogus"], 2, "unknown option '--bogus'"),
        ([os.path.join(work, "missing"), "x"], 1, "cannot open '" + os.path.join(work, "missing")),
        ([os.path.join(work, "model.kiln"), "x"], 2, "a .kiln artifact needs --tokenizer"),
        ([os.path.join(work, "wrong_shape"), "x", "--cache-dir", os.path.join(work, "cache")], 1,
         "kiln-compile failed on"),
    ]
    for args, code, expected in usage:
        ran = subprocess.run([embed, *args], capture_output=True, text=True)
        ok = ran.returncode == code and expected in ran.stderr
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'} kiln-embed {' '.join(args[1:]) or '(no arguments)'}: "
              f"exit {ran.returncode}" + ("" if ok else f", expected {code} and '{expected}' in:\n"
                                                      f"{ran.stderr}"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
