"""Writes zero-filled .npy files (standard library only: the test machines have no numpy).

usage: zeros-npy.py DIR NAME:DESCR:SHAPE...   e.g. ids:<i4:4 table:<f4:16x8
"""
import os
import sys

for spec in sys.argv[2:]:
    name, descr, shape_text = spec.split(":")
    shape = [int(extent) for extent in shape_text.split("x")]
    count = 1
    for extent in shape:
        count *= extent
    shape_tuple = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_tuple}, }}"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    with open(os.path.join(sys.argv[1], name + ".npy"), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
        f.write(bytes(count * int(descr[2:])))
