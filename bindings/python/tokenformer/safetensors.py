"""safetensors files in numpy: a reader of headers and tensors, and an
atomic streaming writer (the layout the library reads, see lib/io/safetensors.h).

Layout: u64 little-endian N, N bytes of JSON
``{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [b, e]}}``
padded with spaces so that the data starts at a multiple of 8, then the raw
little-endian row-major data (offsets relative to its start).
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

from ._mapped import MappedFile

__all__ = ["SafetensorsFile", "write", "DTYPES"]

#: safetensors dtype name -> numpy dtype ("BF16" is read as its uint16 bits).
DTYPES: Dict[str, np.dtype] = {
    "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "F64": np.dtype("<f8"), "I64": np.dtype("<i8"), "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"), "I8": np.dtype("i1"), "U8": np.dtype("u1"),
    "U16": np.dtype("<u2"), "U32": np.dtype("<u4"), "U64": np.dtype("<u8"),
    "BOOL": np.dtype("?")}

#: Same limit as the library's reader (a larger header is corruption).
MAX_HEADER = 100 * 1000 * 1000


class SafetensorsTensor(object):
    """One tensor of a :class:`SafetensorsFile`: ``dtype`` (the torch-style
    name: "float32", "float16", "bfloat16", ...), ``shape``, and
    :meth:`float32` (read on demand)."""

    _NAMES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64",
              "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
              "U16": "uint16", "U32": "uint32", "U64": "uint64", "BOOL": "bool"}

    def __init__(self, owner: "SafetensorsFile", st_dtype: str, shape: Tuple[int, ...],
                 begin: int, end: int):
        self._owner = owner
        self.st_dtype = st_dtype
        self.shape = shape
        self._span = (begin, end)

    @property
    def dtype(self) -> str:
        return self._NAMES[self.st_dtype]

    def numpy(self) -> np.ndarray:
        """A copy in the file's dtype (BF16 as uint16 bit patterns)."""
        b, e = self._span
        mm = self._owner._map
        if mm is None:
            raise ValueError("%s is closed" % self._owner.path)
        buf = memoryview(mm)[self._owner._data + b:self._owner._data + e]
        return np.frombuffer(buf, dtype=DTYPES[self.st_dtype]).reshape(self.shape).copy()

    def float32(self) -> np.ndarray:
        """A float32 copy (F32, F16 and BF16 exactly; F64 rounded)."""
        a = self.numpy()
        if self.st_dtype == "BF16":
            return (a.astype(np.uint32) << 16).view(np.float32)
        if self.st_dtype not in ("F32", "F16", "F64"):
            raise ValueError("%s: a tensor of dtype %s is not floating point"
                             % (self._owner.path, self.st_dtype))
        return a.astype(np.float32)


class SafetensorsFile(MappedFile):
    """A safetensors file mapped read-only: ``tensors`` {name:
    :class:`SafetensorsTensor`} in header order, ``metadata`` {str: str}.
    Offsets and sizes are checked at open; a context manager."""

    def __init__(self, path: str):
        super().__init__(path)
        try:
            size, mm = self.size, self._map
            if size < 8 or mm is None:
                raise ValueError("%s: shorter than a safetensors header" % self.path)
            (n,) = struct.unpack("<Q", mm[:8])
            if n > MAX_HEADER or 8 + n > size:
                raise ValueError("%s: not a safetensors file (header length %d, file %d bytes)"
                                 % (self.path, n, size))
            try:
                header = json.loads(mm[8:8 + n].decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                raise ValueError("%s: the safetensors header is not JSON: %s"
                                 % (self.path, e)) from None
            if not isinstance(header, dict):
                raise ValueError("%s: the safetensors header is not a JSON object" % self.path)
            self._data = 8 + n
            self.metadata: Dict[str, str] = header.pop("__metadata__", None) or {}
            self.tensors: Dict[str, SafetensorsTensor] = {}
            for name, info in header.items():
                self.tensors[name] = self._entry(name, info, size - self._data)
        except BaseException:
            self.close()
            raise

    def _entry(self, name, info, data_bytes) -> SafetensorsTensor:
        try:
            dt = info["dtype"]
            shape = tuple(int(s) for s in info["shape"])
            b, e = (int(x) for x in info["data_offsets"])
            count = int(np.prod(shape, dtype=np.int64)) if shape else 1
            ok = (dt in DTYPES and all(s >= 0 for s in shape) and 0 <= b <= e <= data_bytes
                  and e - b == count * DTYPES[dt].itemsize)
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError("%s: tensor '%s' has a bad header entry %r" % (self.path, name, info))
        return SafetensorsTensor(self, dt, shape, b, e)


def _fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # filesystems that cannot sync a directory
    finally:
        os.close(fd)


def write(path: str, tensors: Iterable[Tuple[str, str, Tuple[int, ...],
                                             Callable[[], np.ndarray]]],
          metadata: Optional[Dict[str, str]] = None) -> int:
    """Writes ``path`` atomically: a temporary file in the same directory,
    fsync, rename over ``path``, fsync of the directory; on any error the
    temporary file is removed and ``path`` is untouched.

    ``tensors``: (name, safetensors dtype, shape, producer) in file order;
    the producer returns the data (any array of that many elements,
    converted to the dtype's numpy type; for BF16 the uint16 bit patterns)
    and is called once, when the tensor
    is written, so that only one tensor is in memory at a time.  Returns the
    file's size in bytes."""
    entries: List[Tuple[str, str, Tuple[int, ...], Callable[[], np.ndarray]]] = list(tensors)
    header: Dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for name, dt, shape, _ in entries:
        if name == "__metadata__" or name in header:
            raise ValueError("tensor name %r is reserved or repeated" % name)
        nbytes = int(np.prod(shape, dtype=np.int64)) * DTYPES[dt].itemsize
        header[name] = {"dtype": dt, "shape": [int(s) for s in shape],
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(path) + ".tmp.")
    try:
        try:
            mode = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            fd = -1
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for name, dt, shape, produce in entries:
                a = np.ascontiguousarray(produce(), dtype=DTYPES[dt])
                if a.size != int(np.prod(shape, dtype=np.int64)):
                    raise ValueError("tensor %s: %d elements for shape %s"
                                     % (name, a.size, list(shape)))
                f.write(a.data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path)
    return 8 + len(raw) + offset
