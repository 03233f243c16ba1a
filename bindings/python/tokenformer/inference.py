"""Inference: the KV-cache decoder, sampling, generation and the byte-level
tokenizer (``tf_decoder``, ``tf_sample``, ``tf_bytes_to_tokens`` ...)."""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike

from . import _lib, errors
from ._lib import F
from .params import SamplerParams, given_fields

if TYPE_CHECKING:
    from .model import Model

__all__ = ["Decoder", "Sampler", "sample", "sampler_params", "official_sampler_params",
           "bytes_to_tokens", "tokens_to_bytes", "tokens_to_text"]


def sampler_params(params: Optional[SamplerParams] = None, *,
                   temperature: Optional[float] = None, top_k: Optional[int] = None,
                   top_p: Optional[float] = None, seed: Optional[int] = None) -> SamplerParams:
    """A :class:`SamplerParams` from the library defaults (or a copy of
    ``params``) with the given fields set (None keeps a value)."""
    fields = given_fields(SamplerParams, locals())
    if params is None:
        return SamplerParams(**fields)
    if not isinstance(params, SamplerParams):
        raise TypeError("params must be a SamplerParams, not %s" % type(params).__name__)
    return params.copy().update(**fields) if fields else params


def official_sampler_params(temperature: float = 0.0, top_k: int = 0, top_p: float = 0.0,
                            seed: Optional[int] = None) -> SamplerParams:
    """``tf_sampler_params_official()``: a :class:`SamplerParams` that
    samples as GPT-NeoX's text generation (``text_generation.yml``) does
    with these values, 0 meaning off for each: greedy when all three are 0;
    else softmax(logits / temperature) (no division at 0), the ``top_k``
    most likely, then the nucleus of mass ``top_p``.  ArgumentError for a
    negative temperature or top_k, or top_p outside [0, 1]."""
    p = sampler_params(seed=seed, top_k=top_k)  # the struct checks top_k's type and range
    _lib.check(F.tf_sampler_params_official(ctypes.byref(p), float(temperature), p.top_k,
                                            float(top_p)))
    return p


def sample(logits: ArrayLike, params: Optional[SamplerParams] = None,
           rng_state: Optional[int] = None, **fields: Any) -> Tuple[int, int]:
    """``tf_sample()``: one id from ``logits`` [V] (C-contiguous float32 is
    used in place, anything else converted).  ``rng_state`` defaults to the
    params' seed.  Returns ``(id, next_rng_state)``; pass the state back to
    continue one reproducible stream (or use :class:`Sampler`)."""
    p = sampler_params(params, **fields)
    lg = _lib.as_f32(logits).reshape(-1)
    state = ctypes.c_uint64(p.seed if rng_state is None else int(rng_state))
    out = ctypes.c_int32()
    _lib.check(F.tf_sample(_lib.fptr(lg), lg.size, ctypes.byref(p), ctypes.byref(state),
                           ctypes.byref(out)))
    return int(out.value), int(state.value)


class Sampler(object):
    """Sampling params plus an RNG state: successive :meth:`sample` calls
    continue one reproducible stream.  ``Sampler(temperature=0.8, top_k=40,
    seed=7)``; ``temperature=0`` is greedy."""

    def __init__(self, params: Optional[SamplerParams] = None, *,
                 temperature: Optional[float] = None, top_k: Optional[int] = None,
                 top_p: Optional[float] = None, seed: Optional[int] = None) -> None:
        self.params = sampler_params(params, temperature=temperature, top_k=top_k, top_p=top_p,
                                     seed=seed)
        self.rng_state = int(self.params.seed)

    def sample(self, logits: ArrayLike) -> int:
        """One id from ``logits`` [V]; advances the RNG state."""
        i, self.rng_state = sample(logits, self.params, self.rng_state)
        return i

    __call__ = sample


class Decoder(_lib.Handle):
    """Incremental decoding with a key/value cache for ``batch`` sequences.

    ``Decoder(model, batch=1)``.  The decoder keeps a reference to its
    model object; closing the model closes the decoder.  Prefill a prompt,
    then :meth:`step` one token per sequence, or :meth:`generate`.
    """

    _free_fn = "tf_decoder_free"
    _errmsg_fn = "tf_decoder_errmsg"

    def __init__(self, model: "Model", batch: int = 1) -> None:
        mh = model._h()
        out = _lib.DecoderP()
        _lib.check(F.tf_decoder_create(mh, int(batch), ctypes.byref(out)))
        _lib.Handle.__init__(self, out, keepalive=model)
        self._batch = int(batch)
        self._V = model.vocab_size
        model._add_dependent(self)

    @property
    def model(self) -> Optional["Model"]:
        """The :class:`Model` decoded from (None once closed)."""
        return getattr(self, "_keepalive", None)

    @property
    def batch(self) -> int:
        """Number of parallel sequences."""
        return self._batch

    def errmsg(self) -> str:
        """``tf_decoder_errmsg()``: the last error on this decoder."""
        return _lib._dec(F.tf_decoder_errmsg(self._h()))

    def reset(self) -> None:
        """Forgets every cached position."""
        h = self._h()
        self._check(F.tf_decoder_reset(h))

    @property
    def position(self) -> int:
        """Positions cached so far."""
        return int(F.tf_decoder_position(self._h()))

    def _tokens(self, tokens, what):
        tok = _lib.as_i32(tokens, what)
        if tok.ndim == 0:
            tok = tok.reshape(1)
        return tok

    def prefill(self, tokens: ArrayLike, logits: bool = True,
                out: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        """Appends T tokens per sequence (``tokens`` [batch, T]; 1-D is
        [1, T] when batch is 1).  Returns the last position's logits
        [batch, V] (None if ``logits`` is false)."""
        h = self._h()
        tok = self._tokens(tokens, "tokens")
        if tok.ndim == 1 and self._batch == 1:
            tok = tok.reshape(1, -1)
        if tok.ndim != 2 or tok.shape[0] != self._batch or tok.shape[1] < 1:
            raise errors.ShapeError(2, "tokens has shape %s; the decoder needs [%d, T>=1]"
                                    % (tuple(tok.shape), self._batch))
        lg = _lib.out_array(out, (self._batch, self._V), np.float32) \
            if (logits or out is not None) else None
        self._check(F.tf_decoder_prefill(h, tok.shape[1], _lib.iptr(tok), _lib.fptr(lg)))
        return lg

    def step(self, tokens: ArrayLike, logits: bool = True,
             out: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        """One token per sequence (``tokens`` [batch]; an int for batch 1).
        Returns the new logits [batch, V] (None if ``logits`` is false)."""
        h = self._h()
        tok = self._tokens(tokens, "tokens").reshape(-1)
        if tok.size != self._batch:
            raise errors.ShapeError(2, "step needs %d tokens (one per sequence), got %d"
                                    % (self._batch, tok.size))
        lg = _lib.out_array(out, (self._batch, self._V), np.float32) \
            if (logits or out is not None) else None
        self._check(F.tf_decoder_step(h, _lib.iptr(tok), _lib.fptr(lg)))
        return lg

    def score(self, tokens: ArrayLike, targets: ArrayLike) -> float:
        """``tf_decoder_score()``: appends ``tokens`` [batch, T] (1-D is
        [1, T] when batch is 1) like :meth:`prefill` and returns the summed
        cross-entropy (nats) of ``targets`` [batch, T], the next tokens, over
        the batch * T positions; memory stays bounded whatever T.  After
        :meth:`reset`, one window of seq_length tokens per call is the
        official evaluation: ``mean loss = sum of scores / positions``."""
        h = self._h()
        tok = self._tokens(tokens, "tokens")
        tgt = self._tokens(targets, "targets")
        if tok.ndim == 1 and self._batch == 1:
            tok = tok.reshape(1, -1)
            tgt = tgt.reshape(1, -1)
        if tok.ndim != 2 or tok.shape[0] != self._batch or tok.shape[1] < 1:
            raise errors.ShapeError(2, "tokens has shape %s; the decoder needs [%d, T>=1]"
                                    % (tuple(tok.shape), self._batch))
        if tgt.shape != tok.shape:
            raise errors.ShapeError(2, "targets has shape %s, tokens %s"
                                    % (tuple(tgt.shape), tuple(tok.shape)))
        nll = ctypes.c_double()
        self._check(F.tf_decoder_score(h, tok.shape[1], _lib.iptr(tok), _lib.iptr(tgt),
                                       ctypes.byref(nll)))
        return float(nll.value)

    @property
    def logits(self) -> Optional[np.ndarray]:
        """A copy of the last position's logits [batch, V]; None before the
        first prefill."""
        p = F.tf_decoder_logits(self._h())
        if not p:
            return None
        return np.ctypeslib.as_array(p, shape=(self._batch, self._V)).copy()

    def generate(self, max_new: int, params: Optional[SamplerParams] = None,
                 stop_ids: Iterable[int] = (),
                 callback: Optional[Callable[[np.ndarray], Any]] = None,
                 **fields: Any) -> np.ndarray:
        """``tf_decoder_generate()``: up to ``max_new`` tokens per sequence
        after the cached positions, sampled per :class:`SamplerParams`
        (``params`` and/or fields, e.g. ``temperature=0.8, top_k=40``).

        A sequence stops after emitting one of ``stop_ids`` or at seq_length.
        ``callback(ids)``, if given, gets each step's ids (an int32 array
        [batch], -1 for stopped sequences); a true return stops generation;
        an exception in it stops generation and is re-raised here.

        Returns the ids, an int32 array [batch, steps run] (-1 after a
        sequence stopped)."""
        h = self._h()
        max_new = int(max_new)
        if max_new < 0:
            raise errors.ArgumentError(1, "max_new must be >= 0 (got %d)" % max_new)
        p = sampler_params(params, **fields)
        stops = _lib.as_i32(list(stop_ids) if not isinstance(stop_ids, np.ndarray) else stop_ids,
                            "stop_ids").reshape(-1)
        out = np.empty((self._batch, max(max_new, 1)), np.int32)
        produced = ctypes.c_int(0)
        failure = []

        if callback is not None:
            def trampoline(user, ids, n):
                try:
                    arr = np.ctypeslib.as_array(ids, shape=(n,)).copy()
                    return 1 if callback(arr) else 0
                except BaseException as e:  # noqa: B902 -- re-raised below
                    failure.append(e)
                    return 1
            cb = _lib.TokenCallback(trampoline)
        else:
            cb = _lib.TokenCallback()  # type: ignore[call-overload]  # NULL: no callback
        st = F.tf_decoder_generate(h, max_new, ctypes.byref(p),
                                   _lib.iptr(stops) if stops.size else None, int(stops.size),
                                   _lib.iptr(out), ctypes.byref(produced), cb, None)
        if failure:
            raise failure[0]
        self._check(st)
        return out[:, :produced.value] if max_new else out[:, :0]

    def __repr__(self):
        if self.closed:
            return "<Decoder closed>"
        return "<Decoder batch=%d position=%d>" % (self._batch, self.position)


def bytes_to_tokens(text: Union[str, bytes, bytearray, memoryview]) -> np.ndarray:
    """``tf_bytes_to_tokens()``: one id per byte of ``text`` (bytes, or a
    str as UTF-8) as a new int32 array."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    out = np.empty(len(data), np.int32)
    count = ctypes.c_size_t()
    _lib.check(F.tf_bytes_to_tokens(data, len(data), _lib.iptr(out), out.size,
                                    ctypes.byref(count)))
    return out[:count.value]


def tokens_to_bytes(ids: ArrayLike) -> bytes:
    """``tf_tokens_to_bytes()``: ids in [0, 256) back to bytes (RangeError
    naming the first id outside)."""
    tok = _lib.as_i32(ids, "ids").reshape(-1)
    buf = ctypes.create_string_buffer(tok.size + 1)
    _lib.check(F.tf_tokens_to_bytes(_lib.iptr(tok), tok.size, buf, len(buf)))
    return buf.raw[:tok.size]


def tokens_to_text(ids: ArrayLike, errors: str = "replace") -> str:
    """:func:`tokens_to_bytes` decoded as UTF-8 (``errors`` as in
    ``bytes.decode``; ids < 0, e.g. generate's -1 padding, are dropped)."""
    tok = _lib.as_i32(ids, "ids").reshape(-1)
    return tokens_to_bytes(tok[tok >= 0]).decode("utf-8", errors)
