"""Helpers for the binding tests: a small safetensors reader (numpy + json,
independent of the C library), the fixtures' error metric, RSS, paths."""

import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BINDINGS = os.path.normpath(os.path.join(HERE, ".."))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "data")
HEADER = os.path.join(ROOT, "include", "tokenformer.h")

# The tests exercise the package of this source tree (and through it the
# library in build/, unless TOKENFORMER_LIBRARY says otherwise).
if BINDINGS not in sys.path:
    sys.path.insert(0, BINDINGS)

TOL_OUT = 2e-5
TOL_GRAD = 2e-4

_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I32": np.dtype("<i4"),
           "I64": np.dtype("<i8"), "U8": np.dtype("u1"), "U16": np.dtype("<u2"),
           "F16": np.dtype("<f2"), "I16": np.dtype("<i2"), "I8": np.dtype("i1")}


class SafeTensors(object):
    """A safetensors file read whole: ``st.tensors`` {name: ndarray},
    ``st.metadata`` {str: str}.  Format: u64 LE header length N, N bytes of
    JSON ({name: {dtype, shape, data_offsets}}, "__metadata__"), then the
    data; offsets are relative to the end of the header."""

    def __init__(self, path):
        with open(path, "rb") as f:
            raw = f.read()
        if len(raw) < 8:
            raise ValueError("%s: shorter than the 8-byte header length" % path)
        (n,) = struct.unpack("<Q", raw[:8])
        if 8 + n > len(raw):
            raise ValueError("%s: header length %d past the end of the file" % (path, n))
        header = json.loads(raw[8:8 + n].decode("utf-8"))
        data = raw[8 + n:]
        self.path = path
        self.metadata = header.pop("__metadata__", {}) or {}
        self.tensors = {}
        for name, info in header.items():
            dt = _DTYPES[info["dtype"]]
            begin, end = info["data_offsets"]
            shape = tuple(info["shape"])
            count = int(np.prod(shape, dtype=np.int64)) if shape else 1
            if end - begin != count * dt.itemsize or end > len(data):
                raise ValueError("%s: tensor %s: bad data_offsets" % (path, name))
            arr = np.frombuffer(data, dtype=dt, count=count, offset=begin).reshape(shape)
            self.tensors[name] = arr.astype(dt.newbyteorder("="))

    def __getitem__(self, name):
        return self.tensors[name]

    def __contains__(self, name):
        return name in self.tensors

    def meta(self, key, default=None):
        return self.metadata.get(key, default)

    def meta_num(self, key, default=None):
        v = self.metadata.get(key)
        return default if v is None else float(v)


def rel_err(a, b):
    """The fixtures' metric: max|a - b| / (max|b| + 1e-6); NaN -> inf."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size != b.size:
        return float("inf")
    a = a.reshape(-1)
    b = b.reshape(-1)
    d = np.abs(a - b)
    if np.isnan(d).any():
        return float("inf")
    num = float(d.max()) if d.size else 0.0
    den = float(np.abs(b).max()) if b.size else 0.0
    return num / (den + 1e-6)


def rss_bytes():
    """Resident set size of this process, from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        resident = int(f.read().split()[1])
    return resident * os.sysconf("SC_PAGE_SIZE")


def fixtures(kind=None):
    """Paths of the *.safetensors fixtures (of a given metadata kind)."""
    if not os.path.isdir(FIXTURES):
        return []
    out = []
    for name in sorted(os.listdir(FIXTURES)):
        if name.endswith(".safetensors"):
            path = os.path.join(FIXTURES, name)
            if kind is None or SafeTensors(path).meta("kind") == kind:
                out.append(path)
    return out
