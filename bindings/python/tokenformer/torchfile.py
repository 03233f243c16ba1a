"""PyTorch checkpoint files read without torch, and without running them.

A ``torch.save`` file is a pickle, and unpickling runs whatever callables
the file names: a checkpoint downloaded from elsewhere is untrusted input.
:func:`load` unpickles with a restricted unpickler whose ``find_class``
hands out only what rebuilds tensors and plain containers
(:data:`ALLOWED_GLOBALS`), plus inert placeholders for the bookkeeping
objects DeepSpeed and GPT-NeoX put beside the weights
(:data:`PLACEHOLDER_GLOBALS`: random-generator states, argparse
namespaces; never called, their contents dropped).  Any other global is
refused with :class:`UnsafePickleError` naming it, before anything runs.

Formats:

* the zip format (torch >= 1.6): ``<name>/data.pkl`` plus one member
  ``<name>/data/<key>`` per storage, stored uncompressed; the storages are
  used in place through ``mmap`` (nothing is copied until a tensor is
  asked for);
* the legacy format (torch < 1.6, or ``_use_new_zipfile_serialization=False``):
  a magic-number pickle, a protocol pickle, a system-info pickle, the
  object pickle, the list of storage keys, then each storage as an int64
  element count and its bytes, in the order of that list.

Tensors come back as :class:`TensorRef` (dtype, shape, and ``numpy()`` /
``float32()`` to read them); storages of dtype float32, float16, bfloat16,
float64 and the integer and bool types are understood.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import pickle
import struct
import zipfile
from typing import Any, BinaryIO, Dict, Optional, Tuple

import numpy as np

from ._mapped import MappedFile

__all__ = ["load", "TorchFile", "TensorRef", "TorchFileError", "UnsafePickleError",
           "ALLOWED_GLOBALS", "PLACEHOLDER_GLOBALS", "Placeholder"]

_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_LEGACY_PROTOCOL = 1001
# A checkpoint's object pickle holds names and shapes, never tensor data.
_MAX_PICKLE = 1 << 30


class TorchFileError(ValueError):
    """A file that is not a readable PyTorch checkpoint (or is damaged)."""


class UnsafePickleError(TorchFileError):
    """The pickle names a global outside the allowed set (it could run code)."""


# ---- what a checkpoint may contain ----------------------------------------------

#: numpy dtype of each torch storage class ("bfloat16" is read as uint16 and
#: widened exactly by :meth:`TensorRef.float32`).
STORAGE_DTYPES: Dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"), "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"), "DoubleStorage": np.dtype("<f8"),
    "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"), "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"), "BoolStorage": np.dtype("?"),
}
_DTYPE_NAMES = {"FloatStorage": "float32", "HalfStorage": "float16",
                "BFloat16Storage": "bfloat16", "DoubleStorage": "float64",
                "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
                "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool"}


class _StorageType(object):
    """Stands for a ``torch.<X>Storage`` class in a persistent id."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]

    def __repr__(self):
        return "torch.%s" % self.name

    def __setstate__(self, state):
        raise TorchFileError("the pickle sets the state of a storage type")


class _Storage(object):
    """A storage of a file: its type, key and (lazily) its bytes."""

    def __init__(self, kind: _StorageType, key: str, source: "TorchFile"):
        self.kind = kind
        self.key = key
        self._source = source
        self._array: Optional[np.ndarray] = None

    def __setstate__(self, state):
        raise TorchFileError("the pickle sets the state of a storage")

    def array(self) -> np.ndarray:
        """The storage's elements (a read-only view of the file's bytes)."""
        if self._array is None:
            raw = self._source._storage_bytes(self.key)
            dt = self.kind.dtype
            if self._source.big_endian:
                dt = dt.newbyteorder(">")
            if len(raw) % dt.itemsize:
                raise TorchFileError("%s: storage %s has %d bytes, not a whole number of %s"
                                     % (self._source.path, self.key, len(raw),
                                        _DTYPE_NAMES[self.kind.name]))
            self._array = np.frombuffer(raw, dtype=dt)
        return self._array


class TensorRef(object):
    """A tensor of a checkpoint, not yet read: ``dtype`` (a torch dtype
    name such as ``"float16"``), ``shape``; :meth:`numpy` reads it in the
    file's dtype (bfloat16 as its uint16 bit patterns), :meth:`float32`
    widens float32/float16/bfloat16 exactly (float64 is rounded)."""

    def __init__(self, storage: _Storage, offset: int, shape: Tuple[int, ...],
                 stride: Tuple[int, ...]):
        self._storage = storage
        self._offset = offset
        self.shape = shape
        self._stride = stride

    def __setstate__(self, state):
        raise TorchFileError("the pickle sets the state of a tensor")

    @property
    def dtype(self) -> str:
        return _DTYPE_NAMES[self._storage.kind.name]

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def _view(self) -> np.ndarray:
        """A read-only strided view into the storage (checked to lie inside it)."""
        data = self._storage.array()
        if self.numel == 0:
            return np.zeros(self.shape, dtype=data.dtype)
        last = self._offset + sum((n - 1) * s for n, s in zip(self.shape, self._stride))
        if last >= data.size:
            raise TorchFileError("%s: a tensor of shape %s reaches element %d of storage %s, "
                                 "which has %d: the file is damaged"
                                 % (self._storage._source.path, list(self.shape), last,
                                    self._storage.key, data.size))
        item = data.itemsize
        return np.lib.stride_tricks.as_strided(
            data[self._offset:], shape=self.shape,
            strides=tuple(s * item for s in self._stride), writeable=False)

    def numpy(self) -> np.ndarray:
        """The tensor as a new C-contiguous array in the file's dtype
        (native byte order)."""
        view = self._view()
        return np.array(view, dtype=view.dtype.newbyteorder("="), order="C")

    def float32(self) -> np.ndarray:
        """The tensor as a new C-contiguous float32 array (floating dtypes
        only; float16 and bfloat16 exactly)."""
        if self.dtype not in ("float32", "float16", "bfloat16", "float64"):
            raise TorchFileError("%s: a tensor of dtype %s is not floating point"
                                 % (self._storage._source.path, self.dtype))
        view = self._view()
        if self.dtype == "bfloat16":  # the upper half of a float32's bits
            return (view.astype(np.uint32) << 16).view(np.float32)
        return view.astype(np.float32, order="C")

    def __repr__(self):
        return "TensorRef(%s, %s)" % (self.dtype, list(self.shape))


def _ints(value: Any, what: str) -> Tuple[int, ...]:
    if not isinstance(value, tuple) or not all(type(v) is int and v >= 0 for v in value):
        raise TorchFileError("a tensor's %s is %r, not a tuple of non-negative integers"
                             % (what, value))
    return value


def _rebuild_tensor(storage, storage_offset, size, stride, *rest) -> TensorRef:
    """torch._utils._rebuild_tensor_v2 (and the older _rebuild_tensor):
    (storage, offset, size, stride, requires_grad, backward_hooks[, metadata])."""
    if not isinstance(storage, _Storage):
        raise TorchFileError("a tensor is rebuilt from %r, not from a storage of the file"
                             % type(storage).__name__)
    if type(storage_offset) is not int or storage_offset < 0:
        raise TorchFileError("a tensor's storage offset is %r" % (storage_offset,))
    shape = _ints(tuple(size), "size")
    strides = _ints(tuple(stride), "stride")
    if len(shape) != len(strides):
        raise TorchFileError("a tensor has size %s but stride %s" % (shape, strides))
    return TensorRef(storage, storage_offset, shape, strides)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *rest) -> TensorRef:
    """torch._utils._rebuild_parameter(_with_state): a Parameter is its data."""
    if not isinstance(data, TensorRef):
        raise TorchFileError("a parameter wraps %r, not a tensor" % type(data).__name__)
    return data


def _torch_size(*args) -> tuple:
    """torch.Size: a tuple of ints."""
    return tuple(*args)


def _codecs_encode(text: str, encoding: str = "utf-8") -> bytes:
    """_codecs.encode as protocol-2 pickles use it to spell ``bytes``:
    only str -> bytes in latin-1 (any other codec is refused)."""
    if not isinstance(text, str) or encoding.lower().replace("_", "-") not in ("latin1",
                                                                               "latin-1"):
        raise UnsafePickleError("_codecs.encode is allowed only to spell bytes in latin-1, "
                                "not with %r" % (encoding,))
    return text.encode("latin-1")


class Placeholder(object):
    """Stands for a harmless object the converter does not need (a random
    generator's state, an argparse namespace): built and filled without
    running any of its code, its contents dropped."""

    global_name = "?"

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __repr__(self):
        return "<%s, not loaded>" % self.global_name


def _placeholder(module: str, name: str) -> type:
    return type("Placeholder_" + name, (Placeholder,), {"global_name": module + "." + name})


#: Globals rebuilt for real: tensors, storages and plain containers.
ALLOWED_GLOBALS: Dict[Tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): _torch_size,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): _codecs_encode,
}
for _name in STORAGE_DTYPES:
    ALLOWED_GLOBALS[("torch", _name)] = _StorageType(_name)

#: Globals DeepSpeed and GPT-NeoX checkpoints hold beside the weights
#: (numpy's random state, argparse namespaces, torch devices and dtypes):
#: replaced by inert :class:`Placeholder` classes.
PLACEHOLDER_GLOBALS = frozenset([
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("argparse", "Namespace"), ("torch", "device"),
    ("torch", "float32"), ("torch", "float16"), ("torch", "bfloat16"), ("torch", "float64"),
])


class _Unpickler(pickle.Unpickler):
    def __init__(self, stream: BinaryIO, source: "TorchFile"):
        super().__init__(stream)
        self._source = source

    def find_class(self, module: str, name: str):
        # protocol-2 pickles spell Python 2 names (__builtin__.set): map
        # them as pickle's own find_class does, then look them up
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        found = ALLOWED_GLOBALS.get((module, name))
        if found is not None:
            return found
        if (module, name) in PLACEHOLDER_GLOBALS:
            return _placeholder(module, name)
        raise UnsafePickleError(
            "%s: refusing to unpickle the global '%s.%s': a checkpoint may hold only tensors "
            "and plain containers, and unpickling this could run code.  If the file is a "
            "genuine checkpoint, load it with torch and re-save its state_dict."
            % (self._source.path, module, name))

    def persistent_load(self, pid):
        return self._source._persistent(pid)


# ---- the file ------------------------------------------------------------------------


class TorchFile(MappedFile):
    """An open PyTorch checkpoint: ``obj`` is the unpickled object (dicts,
    lists, :class:`TensorRef` ...).  The storages stay mapped until
    :meth:`close` (a context manager)."""

    def __init__(self, path: str):
        self.big_endian = False
        self.format = "?"
        self._zip: Optional[zipfile.ZipFile] = None
        self._prefix = ""
        self._storages: Dict[str, _Storage] = {}
        self._legacy_spans: Dict[str, Tuple[int, int]] = {}
        self._legacy_kinds: Dict[str, _StorageType] = {}
        super().__init__(path)
        try:
            if self._map is None:
                raise TorchFileError("%s: the file is empty" % self.path)
            if self._map[:4] == b"PK\x03\x04":
                self.obj = self._open_zip()
            elif self._map[:1] == b"\x80":
                self.obj = self._open_legacy()
            else:
                raise TorchFileError("%s: not a PyTorch checkpoint (neither the zip format of "
                                     "torch.save nor its legacy pickle format)" % self.path)
        except BaseException:
            self.close()
            raise

    # -- zip format
    def _open_zip(self):
        self.format = "zip"
        try:
            self._zip = zipfile.ZipFile(self._fh)
        except zipfile.BadZipFile as e:
            raise TorchFileError("%s: a damaged zip archive: %s" % (self.path, e)) from None
        pkl = [n for n in self._zip.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise TorchFileError("%s: a zip archive without the one <name>/data.pkl of a "
                                 "torch.save file" % self.path)
        self._prefix = pkl[0][:-len("data.pkl")]
        if self._zip.getinfo(pkl[0]).file_size > _MAX_PICKLE:
            raise TorchFileError("%s: %s is larger than any checkpoint's pickle"
                                 % (self.path, pkl[0]))
        order = self._prefix + "byteorder"
        if order in self._zip.namelist():
            self.big_endian = self._zip.read(order).strip() == b"big"
        return self._unpickle(io.BytesIO(self._zip.read(pkl[0])))

    def _zip_member(self, key: str) -> memoryview:
        name = self._prefix + "data/" + key
        zf, mm = self._zip, self._map
        assert zf is not None and mm is not None  # open (checked by _storage_bytes)
        try:
            info = zf.getinfo(name)
        except KeyError:
            raise TorchFileError("%s: the pickle refers to storage %s, but the archive has no "
                                 "%s" % (self.path, key, name)) from None
        if info.compress_type != zipfile.ZIP_STORED:
            # torch.save stores storages uncompressed; inflating one could
            # take any amount of memory
            raise TorchFileError("%s: storage %s is compressed in the archive (torch.save "
                                 "never does that): re-zip it without compression (zip -0)"
                                 % (self.path, name))
        head = mm[info.header_offset:info.header_offset + 30]
        if len(head) != 30 or head[:4] != b"PK\x03\x04":
            raise TorchFileError("%s: damaged zip entry %s" % (self.path, name))
        name_len, extra_len = struct.unpack("<HH", head[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        if start + info.file_size > len(mm):
            raise TorchFileError("%s: zip entry %s runs past the end of the file"
                                 % (self.path, name))
        return memoryview(mm)[start:start + info.file_size]

    # -- legacy format
    def _open_legacy(self):
        self.format = "legacy"
        stream = self._map  # mmap reads like a file: the pickles are not copied
        stream.seek(0)
        try:
            magic = self._unpickle(stream)
            if magic != _LEGACY_MAGIC:
                raise TorchFileError("%s: a pickle, but not a PyTorch checkpoint (no torch.save "
                                     "magic number)" % self.path)
            if self._unpickle(stream) != _LEGACY_PROTOCOL:
                raise TorchFileError("%s: an unknown legacy torch.save protocol" % self.path)
            info = self._unpickle(stream)
            if isinstance(info, dict) and info.get("little_endian") is False:
                self.big_endian = True
            obj = self._unpickle(stream)
            keys = self._unpickle(stream)
        except (EOFError, pickle.UnpicklingError) as e:
            raise TorchFileError("%s: truncated or damaged pickle: %s" % (self.path, e)) from None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise TorchFileError("%s: the legacy storage list is damaged" % self.path)
        pos = stream.tell()
        for key in keys:
            kind = self._legacy_kinds.get(key)
            if kind is None:
                raise TorchFileError("%s: storage %s is listed but never used" % (self.path, key))
            head = self._map[pos:pos + 8]
            if len(head) != 8:
                raise TorchFileError("%s: the file ends before storage %s" % (self.path, key))
            (count,) = struct.unpack(">q" if self.big_endian else "<q", head)
            nbytes = count * kind.dtype.itemsize
            if count < 0 or pos + 8 + nbytes > len(self._map):
                raise TorchFileError("%s: storage %s (%d elements) runs past the end of the "
                                     "file" % (self.path, key, count))
            self._legacy_spans[key] = (pos + 8, pos + 8 + nbytes)
            pos += 8 + nbytes
        return obj

    # -- shared
    def _unpickle(self, stream: BinaryIO):
        try:
            return _Unpickler(stream, self).load()
        except (TorchFileError, EOFError):
            raise
        except pickle.UnpicklingError as e:
            raise TorchFileError("%s: damaged pickle: %s" % (self.path, e)) from None
        except (TypeError, ValueError, KeyError, IndexError, AttributeError,
                RecursionError, MemoryError, struct.error) as e:
            raise TorchFileError("%s: damaged or unexpected pickle content: %s: %s"
                                 % (self.path, type(e).__name__, e)) from None

    def _persistent(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise TorchFileError("%s: unknown persistent id %r" % (self.path, pid))
        kind, key = pid[1], pid[2]
        if not isinstance(kind, _StorageType) or not isinstance(key, str):
            raise TorchFileError("%s: damaged storage reference %r" % (self.path, pid[:3]))
        if self.format == "legacy":
            if len(pid) > 5 and pid[5] is not None:
                raise TorchFileError("%s: storage views (legacy torch < 0.4 files) are not "
                                     "supported" % self.path)
            self._legacy_kinds[key] = kind
        st = self._storages.get(key)
        if st is None:
            st = self._storages[key] = _Storage(kind, key, self)
        elif st.kind.name != kind.name:
            raise TorchFileError("%s: storage %s is used as %s and as %s"
                                 % (self.path, key, st.kind.name, kind.name))
        return st

    def _storage_bytes(self, key: str) -> memoryview:
        if self._map is None:
            raise TorchFileError("%s: the file is closed" % self.path)
        if self.format == "zip":
            return self._zip_member(key)
        begin, end = self._legacy_spans[key]
        return memoryview(self._map)[begin:end]

    def close(self) -> None:
        """Releases the mapping and the file (tensors read before stay valid:
        they are copies)."""
        for st in self._storages.values():
            st._array = None
        self._storages = {}
        if self._zip is not None:
            self._zip.close()
            self._zip = None
        super().close()


def load(path: str) -> TorchFile:
    """Opens a ``torch.save`` file safely (see the module docstring)."""
    return TorchFile(path)
