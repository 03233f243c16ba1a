"""safetensors_io.py -- read and write safetensors files with numpy alone.

Debian ships no `safetensors` package.  The format: a u64 little-endian
header length N, N bytes of JSON {name: {"dtype", "shape", "data_offsets":
[begin, end]}, "__metadata__": {str: str}} padded with spaces so that 8 + N
is a multiple of 8, then the tensors' little-endian row-major bytes, back to
back in header order (offsets relative to the end of the header).  The
writer emits the JSON compactly with the metadata last, so that a file
rewritten from the same values is the same bytes.
"""
import json
import os
import struct

import numpy as np

DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
          "I16": "<i2", "I8": "i1", "U8": "u1"}
_NAME_OF = {np.dtype(v): k for k, v in DTYPES.items()}


def write(path, tensors, metadata=None):
    """tensors: {name: numpy array} in file order (dtype picks F32, I32, ...).
    Written to a temporary file and renamed, so a reader never sees half."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr)
        dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
        if name == "__metadata__" or dt not in _NAME_OF:
            raise ValueError(f"{path}: cannot store {name!r} ({a.dtype})")
        raw = a.astype(dt, copy=False).tobytes()
        header[name] = {"dtype": _NAME_OF[dt], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    os.replace(tmp, path)


def read(path):
    """Returns ({name: numpy array} in file order, {metadata}).  Checks that
    every tensor's byte range fits its dtype and shape and none overlap."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: shorter than a header")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path}: header runs past the end of the file")
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None) or {}
    body = data[8 + n:]
    tensors, spans = {}, []
    for name, info in header.items():
        dt = np.dtype(DTYPES[info["dtype"]])
        shape = tuple(info["shape"])
        begin, end = info["data_offsets"]
        if not 0 <= begin <= end <= len(body) or end - begin != int(np.prod(shape)) * dt.itemsize:
            raise ValueError(f"{path}: {name}: data_offsets {begin},{end} do not fit {shape}")
        spans.append((begin, end, name))
        tensors[name] = np.frombuffer(body, dt, int(np.prod(shape)), begin).reshape(shape).copy()
    spans.sort()
    for (_, e0, n0), (b1, _, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise ValueError(f"{path}: {n0} and {n1} overlap")
    return tensors, meta
