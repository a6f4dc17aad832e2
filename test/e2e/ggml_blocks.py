"""Random but valid ggml quantization blocks for the e2e tests: random bytes with the
f16 scale fields replaced by finite values drawn from given ranges."""
import numpy as np
from gguf import quants


def random_blocks(rng, qtype, rows, cols, scales):
    """A [rows, packed row bytes] uint8 array of `qtype` blocks. `scales` maps the byte
    offset of each f16 scale field in a block to the (low, high) range to draw it from."""
    block, size = quants.GGML_QUANT_SIZES[qtype]
    blocks = rows * cols // block
    data = rng.integers(0, 256, (blocks, size), dtype=np.uint8)
    for offset, (low, high) in scales.items():
        data[:, offset:offset + 2] = (rng.uniform(low, high, blocks).astype(np.float16)
                                      .view(np.uint8).reshape(blocks, 2))
    return data.reshape(rows, cols // block * size)
