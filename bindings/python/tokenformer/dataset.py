"""Token datasets with a validation split (``tf_dataset``): one file, a set
of shards, or ids in memory."""

from __future__ import annotations

import ctypes
import os
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike

from . import _lib, errors
from ._lib import F, PathLike
from .enums import DataFormat, DataFormatLike, Split, SplitLike
from .params import DatasetParams, DataSource

__all__ = ["Dataset", "Source"]

class Source(NamedTuple):
    """What :meth:`Dataset.sources` reports for each file of a split: ``path``
    (str; None for ids from memory), ``format`` (:class:`DataFormat`, as
    read), ``version`` (the llm.c header's, else 0), ``token_bytes`` (bytes
    per id in the file), ``file_tokens`` (ids in the file) and
    ``num_tokens`` (of them, in this split)."""
    path: Optional[str]
    format: DataFormat
    version: int
    token_bytes: int
    file_tokens: int
    num_tokens: int


def _paths(paths: Union[PathLike, Sequence[PathLike]], what: str) -> Tuple[Any, int]:
    """One path or a sequence of them, as a ctypes array of C strings."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    enc = [_lib.path_arg(p) for p in paths]
    arr = (ctypes.c_char_p * max(len(enc), 1))(*enc)
    return arr, len(enc)


def _params(format: DataFormatLike, vocab_size: int, val_fraction: float,
            max_resident: int) -> DatasetParams:
    return DatasetParams(format=format, vocab_size=int(vocab_size),
                         val_fraction=float(val_fraction), max_resident=int(max_resident))


class Dataset(_lib.Handle):
    """A token stream: ``Dataset.open(path, ...)``, a set of shards
    (``Dataset.open_files(train, val, vocab_size=...)`` or
    ``Dataset.open_glob("dir/", "dir/", vocab_size=...)``),
    ``Dataset.from_tokens(ids, vocab_size)`` or ``Dataset.from_bytes(data)``.

    Splits are :class:`Split` members, ints or names ("train", "val").
    Batches are returned as ``(tokens, targets)``, two new int32 arrays
    [B, T] (targets = the next tokens).
    """

    _free_fn = "tf_dataset_free"
    _errmsg_fn = "tf_dataset_errmsg"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("use Dataset.open(), Dataset.from_tokens() or Dataset.from_bytes()")

    @classmethod
    def _wrap(cls, ptr):
        self = cls.__new__(cls)
        _lib.Handle.__init__(self, ptr)
        return self

    @classmethod
    def open(cls, path: PathLike, format: DataFormatLike = "auto", vocab_size: int = 256,
             val_fraction: float = 0.0) -> "Dataset":
        """``tf_dataset_open()``: reads a whole token file.  ``format``:
        "auto", "bytes", "u16" (nanoGPT .bin) or "llmc" (llm.c shards)."""
        out = _lib.DatasetP()
        _lib.check(F.tf_dataset_open(_lib.path_arg(path), int(DataFormat.coerce(format)),
                                     int(vocab_size), float(val_fraction), ctypes.byref(out)))
        return cls._wrap(out)

    @classmethod
    def open_files(cls, train: Union[PathLike, Sequence[PathLike]],
                   val: Union[PathLike, Sequence[PathLike], None] = None, *, vocab_size: int,
                   format: DataFormatLike = "auto", val_fraction: float = 0.0,
                   max_resident: int = 2) -> "Dataset":
        """``tf_dataset_open_files()``: training files (a path or a list, in
        order) and optional validation files, streamed: at most
        ``max_resident`` files are held in memory.  Without validation
        files, the last ``val_fraction`` of the training tokens is the
        validation split."""
        t, nt = _paths(train, "train")
        v, nv = _paths(val, "val") if val is not None else (None, 0)
        p = _params(format, vocab_size, val_fraction, max_resident)
        out = _lib.DatasetP()
        _lib.check(F.tf_dataset_open_files(t, nt, v, nv, ctypes.byref(p), ctypes.byref(out)))
        return cls._wrap(out)

    @classmethod
    def open_glob(cls, train: PathLike, val: Optional[PathLike] = None, *, vocab_size: int,
                  format: DataFormatLike = "auto", val_fraction: float = 0.0,
                  max_resident: int = 2) -> "Dataset":
        """``tf_dataset_open_glob()``: like :meth:`open_files` over the files
        ``train`` and ``val`` name: a directory (its ``*_train_*.bin`` or
        ``*_val_*.bin`` llm.c shards), a glob pattern, or one file."""
        p = _params(format, vocab_size, val_fraction, max_resident)
        out = _lib.DatasetP()
        _lib.check(F.tf_dataset_open_glob(_lib.path_arg(train),
                                          None if val is None else _lib.path_arg(val),
                                          ctypes.byref(p), ctypes.byref(out)))
        return cls._wrap(out)

    @classmethod
    def from_tokens(cls, tokens: ArrayLike, vocab_size: int,
                    val_fraction: float = 0.0) -> "Dataset":
        """``tf_dataset_from_tokens()``: over ids in memory (copied by the
        library; a non-int32 array is converted first)."""
        tok = _lib.as_i32(tokens, "tokens").reshape(-1)
        out = _lib.DatasetP()
        _lib.check(F.tf_dataset_from_tokens(_lib.iptr(tok), tok.size, int(vocab_size),
                                            float(val_fraction), ctypes.byref(out)))
        return cls._wrap(out)

    @classmethod
    def from_bytes(cls, data: Union[str, bytes, bytearray, memoryview],
                   val_fraction: float = 0.0) -> "Dataset":
        """A byte-level dataset (vocab 256) over bytes, or over a str's UTF-8."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        return cls.from_tokens(np.frombuffer(bytes(data), dtype=np.uint8), 256, val_fraction)

    def errmsg(self) -> str:
        """``tf_dataset_errmsg()``: the last error on this dataset."""
        return _lib._dec(F.tf_dataset_errmsg(self._h()))

    def num_tokens(self, split: SplitLike = "train") -> int:
        """Tokens in a split."""
        return int(F.tf_dataset_num_tokens(self._h(), int(Split.coerce(split))))

    def sources(self, split: SplitLike = "train") -> List["Source"]:
        """The files of a split and what was read in each, as a list of
        :data:`Source` tuples (``tf_dataset_source()``)."""
        h = self._h()
        sp = int(Split.coerce(split))
        out = []
        for i in range(int(F.tf_dataset_num_sources(h, sp))):
            s = DataSource()
            s.struct_size = ctypes.sizeof(s)
            self._check(F.tf_dataset_source(h, sp, i, ctypes.byref(s)))
            path = None if s.path is None else os.fsdecode(s.path)
            out.append(Source(path, DataFormat(s.format), s.version, s.token_bytes,
                              s.file_tokens, s.num_tokens))
        return out

    def __len__(self) -> int:
        return self.num_tokens(Split.TRAIN) + self.num_tokens(Split.VAL)

    @staticmethod
    def _bt(B, T):
        B, T = int(B), int(T)
        if B < 1 or T < 1:
            raise errors.ArgumentError(1, "B and T must be >= 1 (B=%d, T=%d)" % (B, T))
        return B, T

    def sample(self, split: SplitLike, seed: int, index: int, B: int,
               T: int) -> Tuple[np.ndarray, np.ndarray]:
        """Batch ``index`` of the seeded random-segment stream of a split
        (a pure function of (seed, index))."""
        h = self._h()
        B, T = self._bt(B, T)
        tok = np.empty((B, T), np.int32)
        tgt = np.empty((B, T), np.int32)
        self._check(F.tf_dataset_sample(h, int(Split.coerce(split)), int(seed), int(index), B, T,
                                        _lib.iptr(tok), _lib.iptr(tgt)))
        return tok, tgt

    def num_batches(self, split: SplitLike, B: int, T: int) -> int:
        """Whole non-overlapping [B, T+1] batches in a split."""
        B, T = self._bt(B, T)
        return int(F.tf_dataset_num_batches(self._h(), int(Split.coerce(split)), B, T))

    def batch(self, split: SplitLike, i: int, B: int, T: int) -> Tuple[np.ndarray, np.ndarray]:
        """Batch ``i`` of the split's non-overlapping batches, in order."""
        h = self._h()
        B, T = self._bt(B, T)
        tok = np.empty((B, T), np.int32)
        tgt = np.empty((B, T), np.int32)
        self._check(F.tf_dataset_batch(h, int(Split.coerce(split)), int(i), B, T,
                                       _lib.iptr(tok), _lib.iptr(tgt)))
        return tok, tgt

    def __repr__(self):
        if self.closed:
            return "<Dataset closed>"
        return "<Dataset train=%d val=%d>" % (self.num_tokens("train"), self.num_tokens("val"))
