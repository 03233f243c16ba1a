"""A file mapped read-only: what the checkpoint readers (safetensors.py,
torchfile.py) stand on, so that tensors are read in place and only the one
being converted is ever copied."""

from __future__ import annotations

import mmap
import os
from typing import BinaryIO, Optional, TypeVar

_M = TypeVar("_M", bound="MappedFile")


class MappedFile(object):
    """``path``, ``size`` and ``_map`` (None for an empty file) of a file
    opened read-only; :meth:`close` releases both (a context manager).
    OSError if it cannot be opened."""

    def __init__(self, path: "str | os.PathLike[str]"):
        self.path = os.fspath(path)
        self._map: Optional[mmap.mmap] = None
        self._fh: Optional[BinaryIO] = open(self.path, "rb")
        try:
            self.size = os.fstat(self._fh.fileno()).st_size
            if self.size:
                self._map = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Releases the mapping and the file (arrays copied out stay valid)."""
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:
                pass  # a view is still alive; the mapping goes with it
            self._map = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self: _M) -> _M:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
