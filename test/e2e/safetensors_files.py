"""Writes safetensors files for the tests by hand (u64 header size, JSON header, data),
independently of kiln's reader and of the `safetensors` package."""
import json
import struct

import numpy as np


def write_safetensors(path, tensors):
    """tensors: name -> (dtype name, numpy array already in that dtype's storage)."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (dtype, array) in tensors.items():
        data = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
