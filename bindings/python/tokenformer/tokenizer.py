"""Byte-level BPE tokenizer over a Hugging Face tokenizer.json
(``tf_tokenizer``): GPT-2, GPT-NeoX-20B and the TokenFormer releases.

The ids are those of Hugging Face's JavaScript tokenizers (see the header's
"BPE tokenizer" section for the exact rules: added tokens, the NFC
normaliser, the pre-tokenizer regex, invalid UTF-8)."""

import ctypes
import os
from typing import Dict, Iterable, Union

import numpy as np

from . import _lib, errors
from ._lib import F

__all__ = ["Tokenizer"]

PathLike = Union[str, bytes, "os.PathLike[str]"]
Text = Union[str, bytes, bytearray, memoryview]


class Tokenizer(_lib.Handle):
    """A tokenizer read from a ``tokenizer.json``.

    ``Tokenizer(path)`` loads a file, ``Tokenizer.from_json(text)`` parses
    JSON in memory.  :meth:`encode` takes a str (encoded as UTF-8) or bytes
    (any bytes: invalid UTF-8 becomes U+FFFD, as in the reference) and
    returns an int32 array; :meth:`decode` returns a str (``errors`` as in
    ``bytes.decode``) and :meth:`decode_bytes` the raw bytes, which need not
    end on a character boundary for a part of a sequence.

    A tokenizer keeps workspaces and a word cache: use one per thread.
    """

    _free_fn = "tf_tokenizer_free"
    _errmsg_fn = "tf_tokenizer_errmsg"

    def __init__(self, path: PathLike) -> None:
        """``tf_tokenizer_load()``: FormatError (naming the place) for a file
        that is not a byte-level BPE tokenizer.json, IOError if unreadable."""
        out = _lib.TokenizerP()
        _lib.check(F.tf_tokenizer_load(_lib.path_arg(path), ctypes.byref(out)))
        _lib.Handle.__init__(self, out)

    @classmethod
    def from_json(cls, text: Text) -> "Tokenizer":
        """``tf_tokenizer_parse()``: from the JSON text (str or bytes)."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        out = _lib.TokenizerP()
        _lib.check(F.tf_tokenizer_parse(data, len(data), ctypes.byref(out)))
        self = cls.__new__(cls)
        _lib.Handle.__init__(self, out)
        return self

    def errmsg(self) -> str:
        """``tf_tokenizer_errmsg()``: the last error on this tokenizer."""
        return _lib._dec(F.tf_tokenizer_errmsg(self._h()))

    @property
    def vocab_size(self) -> int:
        """The size of the id space (largest id + 1): 50257 for GPT-2."""
        return int(F.tf_tokenizer_vocab_size(self._h()))

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: Text) -> np.ndarray:
        """``tf_tokenizer_encode()``: the ids of ``text`` (int32 array)."""
        h = self._h()
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        count = ctypes.c_size_t(0)
        # GPT-2-like files need at most one id per byte; else ask for the size
        out = np.empty(len(data) + 16, np.int32)
        st = F.tf_tokenizer_encode(h, data, len(data), _lib.iptr(out), out.size,
                                   ctypes.byref(count))
        if st == 2:  # TF_ERR_SHAPE: count is the size needed
            out = np.empty(count.value, np.int32)
            st = F.tf_tokenizer_encode(h, data, len(data), _lib.iptr(out), out.size,
                                       ctypes.byref(count))
        self._check(st)
        n = count.value
        return out[:n].copy() if n < out.size // 2 else out[:n]

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """``tf_tokenizer_decode()``: the bytes of the ids (RangeError naming
        an id that is not a token)."""
        h = self._h()
        tok = _lib.as_i32(ids if not isinstance(ids, int) else [ids], "ids").reshape(-1)
        size = ctypes.c_size_t(0)
        self._check(F.tf_tokenizer_decode(h, _lib.iptr(tok), tok.size, None, 0,
                                          ctypes.byref(size)))
        buf = ctypes.create_string_buffer(size.value + 1)
        self._check(F.tf_tokenizer_decode(h, _lib.iptr(tok), tok.size, buf, len(buf),
                                          ctypes.byref(size)))
        return buf.raw[:size.value]

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """The text of the ids: :meth:`decode_bytes` as UTF-8 (``errors`` as
        in ``bytes.decode``)."""
        return self.decode_bytes(ids).decode("utf-8", errors)

    def token_to_id(self, token: str) -> int:
        """The id of a token as written in the file ("Ġthe", "<|endoftext|>");
        NotFoundError (a KeyError) if there is none."""
        out = ctypes.c_int32(-1)
        _lib.check(F.tf_tokenizer_token_to_id(self._h(), _lib.name_arg(token),
                                              ctypes.byref(out)))
        return int(out.value)

    def id_to_token(self, id: int) -> str:
        """The token of an id as written in the file; RangeError (an
        IndexError) for an id that is not a token."""
        s = F.tf_tokenizer_id_to_token(self._h(), int(id))
        if s is None:
            raise errors.RangeError(9, "%d is not a token id (0..%d)" % (int(id),
                                                                         self.vocab_size - 1))
        return s.decode("utf-8")

    def is_special(self, id: int) -> bool:
        """True for added tokens marked special (``<|endoftext|>``)."""
        return bool(F.tf_tokenizer_is_special(self._h(), int(id)))

    @property
    def added_tokens(self) -> Dict[str, int]:
        """The added tokens, {content: id}, in file order."""
        h = self._h()
        out = {}
        for i in range(F.tf_tokenizer_num_added(h)):
            id_ = int(F.tf_tokenizer_added_id(h, i))
            out[F.tf_tokenizer_id_to_token(h, id_).decode("utf-8")] = id_
        return out

    def __repr__(self) -> str:
        if self.closed:
            return "<Tokenizer closed>"
        return "<Tokenizer vocab_size=%d added=%d>" % (self.vocab_size, len(self.added_tokens))
