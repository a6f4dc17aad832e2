"""Writes a tiny llama GGUF v3 file (zero weights) for the importer's lit tests, with
only the standard library, so the tests need no gguf package.

usage: make_llama_gguf.py OUT [--arch NAME] [--drop-key KEY] [--set-key KEY=INT]
                              [--type TENSOR=TYPE] [--shape TENSOR=D0,D1] [--tied]
                              [--string-key KEY=TEXT] [--extra TENSOR]
                              [--drop-tensor TENSOR] [--no-tensors] [--truncate BYTES]
                              [--gemma3] [--mamba] [--mamba2] [--rwkv6] [--rwkv7]

The model: vocab 40, embedding 32, 1 block, 4 query heads sharing 2 key/value heads of
size 8, feed-forward 48, context 16. With --gemma3: the gemma3 architecture, 6 blocks,
heads of size 16 (not 32 / 4), query/key norms, post-norms, sliding window 4, tied
output. With --mamba: the mamba architecture (Mamba v1), 2 blocks, inner size 64,
state size 16, convolution kernel 4, time-step rank 2, no heads. With --mamba2: the
mamba2 architecture, the same sizes with 4 heads (the time-step rank) and one group.
With --rwkv6: the rwkv6
architecture (RWKV-6), 2 blocks, head size 8 (4 heads), channel mix 48, lerp rank 4,
decay rank 8, no output tying. With --rwkv7: the rwkv7 architecture, the same sizes
with lora ranks 8 (decay), 4 (iclr), 2 (value mix) and 6 (gate). Shapes are row-major ([out, in]); they are written
innermost first, as GGUF stores them.
"""
import argparse
import struct

# ggml type id: (name, elements per block, bytes per block), from ggml-common.h.
GGML_TYPES = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q5_0": (6, 32, 22),
              "Q8_0": (8, 32, 34), "Q8_1": (9, 32, 36), "Q4_K": (12, 256, 144), "Q6_K": (14, 256, 210),
              "BF16": (30, 1, 2)}
U32, I32, F32, STRING, U64 = 4, 5, 6, 8, 10
ALIGNMENT = 32


def string(text):
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--arch", default="llama")
    parser.add_argument("--drop-key", action="append", default=[])
    parser.add_argument("--set-key", action="append", default=[])
    parser.add_argument("--string-key", action="append", default=[])
    parser.add_argument("--type", action="append", default=[])
    parser.add_argument("--shape", action="append", default=[])
    parser.add_argument("--tied", action="store_true")
    parser.add_argument("--extra", action="append", default=[])
    parser.add_argument("--drop-tensor", action="append", default=[])
    parser.add_argument("--no-tensors", action="store_true")
    parser.add_argument("--truncate", type=int)
    parser.add_argument("--gemma3", action="store_true")
    parser.add_argument("--mamba", action="store_true")
    parser.add_argument("--rwkv6", action="store_true")
    parser.add_argument("--rwkv7", action="store_true")
    parser.add_argument("--mamba2", action="store_true")
    args = parser.parse_args()
    if args.mamba2:
        args.mamba, args.arch = True, "mamba2"
    elif args.mamba:
        args.arch = "mamba"
    if args.rwkv7:
        args.rwkv6, args.arch = True, "rwkv7"
    elif args.rwkv6:
        args.arch = "rwkv6"
    if args.gemma3:
        args.arch, args.tied = "gemma3", True
    arch, blocks, head = args.arch if args.gemma3 else "llama", 6 if args.gemma3 else 1, 8
    if args.mamba or args.rwkv6:
        arch, blocks = args.arch, 2
    if args.gemma3:
        head = 16

    keys = {
        "general.architecture": (STRING, args.arch),
        f"{arch}.context_length": (U32, 16),
        f"{arch}.embedding_length": (U32, 32),
        f"{arch}.block_count": (U32, blocks),
        f"{arch}.feed_forward_length": (U32, 48),
        f"{arch}.attention.head_count": (U32, 4),
        f"{arch}.attention.head_count_kv": (U32, 2),
        f"{arch}.rope.freq_base": (F32, 500000.0),
        f"{arch}.attention.layer_norm_rms_epsilon": (F32, 1e-5),
    }
    if args.gemma3:
        keys.update({"gemma3.attention.key_length": (U32, head),
                     "gemma3.attention.value_length": (U32, head),
                     "gemma3.attention.sliding_window": (U32, 4)})
    if args.mamba:
        keys.update({f"{arch}.feed_forward_length": (U32, 0), f"{arch}.attention.head_count": (U32, 0),
                     f"{arch}.ssm.conv_kernel": (U32, 4), f"{arch}.ssm.inner_size": (U32, 64),
                     f"{arch}.ssm.state_size": (U32, 16),
                     f"{arch}.ssm.time_step_rank": (U32, 4 if args.mamba2 else 2)})
        if args.mamba2:
            keys[f"{arch}.ssm.group_count"] = (U32, 1)
        del keys[f"{arch}.attention.head_count_kv"], keys[f"{arch}.rope.freq_base"]
    if args.rwkv6:
        del keys[f"{arch}.attention.layer_norm_rms_epsilon"], keys[f"{arch}.rope.freq_base"]
        del keys[f"{arch}.attention.head_count_kv"]
        keys.update({f"{arch}.attention.head_count": (U32, 0),
                     f"{arch}.attention.layer_norm_epsilon": (F32, 1e-5),
                     f"{arch}.wkv.head_size": (U32, 8), f"{arch}.token_shift_count": (U32, 2)})
        if args.rwkv7:
            keys.update({"rwkv7.attention.decay_lora_rank": (U32, 8),
                         "rwkv7.attention.iclr_lora_rank": (U32, 4),
                         "rwkv7.attention.value_residual_mix_lora_rank": (U32, 2),
                         "rwkv7.attention.gate_lora_rank": (U32, 6)})
        else:
            keys.update({"rwkv6.time_mix_extra_dim": (U32, 4),
                         "rwkv6.time_decay_extra_dim": (U32, 8),
                         "rwkv6.rescale_every_n_layers": (U32, 0)})
    for key in args.drop_key:
        del keys[key]
    for item in args.set_key:
        key, value = item.split("=")
        if "." in value:
            keys[key] = (F32, float(value))
        else:  # an integer too large for int32 (an absurd count) is written as uint64
            keys[key] = (I32, int(value)) if int(value) < 2**31 else (U64, int(value))
    for item in args.string_key:
        key, value = item.split("=")
        keys[key] = (STRING, value)

    tensors = {"token_embd.weight": [40, 32]}
    block = [("attn_norm", [32]), ("attn_q", [4 * head, 32]), ("attn_k", [2 * head, 32]),
             ("attn_v", [2 * head, 32]), ("attn_output", [32, 4 * head]), ("ffn_norm", [32]),
             ("ffn_gate", [48, 32]), ("ffn_up", [48, 32]), ("ffn_down", [32, 48])]
    if args.gemma3:
        block += [("attn_q_norm", [head]), ("attn_k_norm", [head]), ("post_attention_norm", [32]),
                  ("post_ffw_norm", [32])]
    if args.mamba2:
        block = [("attn_norm.weight", [32]), ("ssm_in.weight", [2 * 64 + 2 * 16 + 4, 32]),
                 ("ssm_conv1d.weight", [96, 4]), ("ssm_conv1d.bias", [96]),
                 ("ssm_dt.bias", [4]), ("ssm_a", [4, 1]), ("ssm_d", [4, 1]),
                 ("ssm_norm.weight", [1, 64]), ("ssm_out.weight", [32, 64])]
    elif args.mamba:
        block = [("attn_norm.weight", [32]), ("ssm_in.weight", [128, 32]),
                 ("ssm_conv1d.weight", [64, 4]), ("ssm_conv1d.bias", [64]),
                 ("ssm_x.weight", [2 + 2 * 16, 64]), ("ssm_dt.weight", [64, 2]),
                 ("ssm_dt.bias", [64]), ("ssm_a", [64, 16]), ("ssm_d", [64]),
                 ("ssm_out.weight", [32, 64])]
    elif args.rwkv7:
        block = [(n + s, [32]) for n in ("attn_norm", "attn_norm_2", "time_mix_ln")
                 for s in (".weight", ".bias")]
        block += [(f"time_mix_{n}.weight", [32]) for n in ("w0", "a0", "v0", "k_k", "k_a", "r_k")]
        block += [("time_mix_w1.weight", [8, 32]), ("time_mix_w2.weight", [32, 8]),
                  ("time_mix_a1.weight", [4, 32]), ("time_mix_a2.weight", [32, 4]),
                  ("time_mix_g1.weight", [6, 32]), ("time_mix_g2.weight", [32, 6]),
                  ("time_mix_lerp_fused.weight", [6, 1, 1, 32]),
                  ("channel_mix_lerp_k.weight", [1, 1, 32]),
                  ("channel_mix_key.weight", [48, 32]), ("channel_mix_value.weight", [32, 48])]
        block += [(f"time_mix_{n}.weight", [32, 32]) for n in ("key", "value", "receptance", "output")]
    elif args.rwkv6:
        block = [(n + s, [32]) for n in ("attn_norm", "attn_norm_2", "time_mix_ln")
                 for s in (".weight", ".bias")]
        block += [("time_mix_lerp_x.weight", [1, 1, 32]), ("time_mix_w1.weight", [20, 32]),
                  ("time_mix_w2.weight", [5, 32, 4]), ("time_mix_lerp_fused.weight", [5, 1, 1, 32]),
                  ("time_mix_first.weight", [4, 8]), ("time_mix_decay.weight", [32]),
                  ("time_mix_decay_w1.weight", [8, 32]), ("time_mix_decay_w2.weight", [32, 8]),
                  ("channel_mix_lerp_k.weight", [1, 1, 32]), ("channel_mix_lerp_r.weight", [1, 1, 32]),
                  ("channel_mix_key.weight", [48, 32]), ("channel_mix_value.weight", [32, 48]),
                  ("channel_mix_receptance.weight", [32, 32])]
        block += [(f"time_mix_{n}.weight", [32, 32]) for n in ("key", "value", "receptance", "gate", "output")]
    else:
        block = [(name + ".weight", shape) for name, shape in block]
    for i in range(blocks):
        for name, shape in block:
            tensors[f"blk.{i}.{name}"] = shape
        if args.rwkv7:  # block 0's unused value mix is sized by the iclr rank
            rank = 4 if i == 0 else 2
            tensors[f"blk.{i}.time_mix_v1.weight"] = [rank, 32]
            tensors[f"blk.{i}.time_mix_v2.weight"] = [32, rank]
    tensors["output_norm.weight"] = [32]
    if args.rwkv6:
        tensors.update({"token_embd_norm.weight": [32], "token_embd_norm.bias": [32],
                        "output_norm.bias": [32]})
    if not args.tied:
        tensors["output.weight"] = [40, 32]
    for name in args.extra:
        tensors[name] = [32]
    for name in args.drop_tensor:
        del tensors[name]
    if args.no_tensors:
        tensors = {}
    for item in args.shape:
        name, dims = item.split("=")
        tensors[name] = [int(d) for d in dims.split(",")]
    types = {name: "F32" for name in tensors}
    for item in args.type:
        name, type_name = item.split("=")
        types[name] = type_name

    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(keys)))
    for key, (kind, value) in keys.items():
        out += string(key) + struct.pack("<I", kind)
        out += {U32: lambda v: struct.pack("<I", v), I32: lambda v: struct.pack("<i", v),
                F32: lambda v: struct.pack("<f", v), STRING: string,
                U64: lambda v: struct.pack("<Q", v)}[kind](value)
    offset, data = 0, []
    for name, shape in tensors.items():
        type_id, block, size = GGML_TYPES[types[name]]
        count = 1
        for d in shape:
            count *= d
        nbytes = count // block * size
        out += string(name) + struct.pack("<I", len(shape))
        out += b"".join(struct.pack("<Q", d) for d in reversed(shape))
        out += struct.pack("<IQ", type_id, offset)
        data.append(bytes(nbytes))
        offset += (nbytes + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT
    out += bytes(-len(out) % ALIGNMENT)
    for chunk in data:
        out += chunk + bytes(-len(chunk) % ALIGNMENT)
    if args.truncate is not None:
        out = out[:args.truncate]
    with open(args.out, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
