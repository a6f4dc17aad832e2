"""An F32 copy of a GGUF model: every tensor dequantized by the `gguf` package, every
metadata key copied. llama.cpp on such a copy computes in f32 throughout (it quantizes
activations only for quantized weights), which makes it the exact reference the tests
compare kiln with; kiln run on the copy checks its float-weight path on the same model.

usage (as a module): f32_copy(source, destination) -> destination
       (from a shell): gguf_f32_copy.py SOURCE DESTINATION
"""
import os
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter, quants

# Written by GGUFWriter itself (or describing the source's tensor layout).
_SKIPPED_KEYS = {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count", "general.architecture",
                 "general.file_type", "general.quantization_version"}


def f32_copy(source, destination):
    """Writes the copy to `destination` (through a .partial file renamed into place, so
    an interrupted run never leaves a truncated model) unless it exists already."""
    if os.path.exists(destination):
        return destination
    reader = GGUFReader(source)
    arch = reader.fields["general.architecture"].contents()
    partial = destination + ".partial"
    writer = GGUFWriter(partial, arch)
    writer.add_file_type(0)  # LLAMA_FTYPE_ALL_F32
    for key, field in reader.fields.items():
        if key in _SKIPPED_KEYS:
            continue
        value_type = field.types[0]
        if value_type == GGUFValueType.ARRAY:
            writer.add_key_value(key, field.contents(), value_type, sub_type=field.types[-1])
        else:
            writer.add_key_value(key, field.contents(), value_type)
    for tensor in reader.tensors:
        values = quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        writer.add_tensor(tensor.name, values.reshape([int(d) for d in reversed(tensor.shape)]))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(partial, destination)
    return destination


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    f32_copy(sys.argv[1], sys.argv[2])
