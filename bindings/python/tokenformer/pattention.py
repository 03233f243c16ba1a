"""Pattention parameter sets (``tf_pattention``)."""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any, Dict, Optional, Type, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from . import _lib, errors
from ._lib import F
from .enums import KeyInitLike, LrRestartLike, Norm, NormLike, ScalePolicy, ScalePolicyLike
from .params import GrowParams, PattentionParams, given_fields

if TYPE_CHECKING:
    from .model import Model

_P = TypeVar("_P", PattentionParams, GrowParams)

__all__ = ["Pattention", "grow_params"]


def _params(cls: Type[_P], params: Optional[_P], fields: Dict[str, Any]) -> _P:
    if params is None:
        return cls(**fields)
    if not isinstance(params, cls):
        raise TypeError("params must be a %s, not %s" % (cls.__name__, type(params).__name__))
    if fields:
        params = params.copy().update(**fields)
    return params


def grow_params(params: Optional[GrowParams] = None, *,
                key_init: Optional[KeyInitLike] = None,
                scale_policy: Optional[ScalePolicyLike] = None, key_std: Optional[float] = None,
                value_std: Optional[float] = None, seed: Optional[int] = None,
                value_std_scale: Optional[float] = None, tau_ramp_steps: Optional[int] = None,
                reset_optimizer: Optional[int] = None,
                lr_schedule: Optional[LrRestartLike] = None, lr: Optional[float] = None,
                min_lr: Optional[float] = None, warmup_steps: Optional[int] = None,
                decay_steps: Optional[int] = None, end_step: Optional[int] = None,
                lr_factor: Optional[float] = None) -> Optional[GrowParams]:
    """A :class:`GrowParams` from the library's defaults (or a copy of
    ``params``) with the given fields set; None stays None when nothing is set."""
    fields = given_fields(GrowParams, locals())
    if params is None and not fields:
        return None
    return _params(GrowParams, params, fields)


class Pattention(_lib.Handle):
    """One Pattention parameter set: keys K [n, d_in], values V [n, d_out];
    ``Y = Theta(X K^T) V``.

    ``Pattention(n=13, d_in=24, d_out=20, norm="softmax")`` creates a set
    from the library's default params with the given fields (None keeps a
    default; or pass a :class:`PattentionParams` as ``params``, which the
    fields then override).  Sets obtained from
    :meth:`tokenformer.Model.pattention` are *borrowed*: the model owns them,
    they keep the model object alive, ``close()`` only detaches them, and
    they become unusable (ClosedError) once the model is closed.

    Arrays: inputs are used in place when they are C-contiguous float32;
    anything else is converted with ``np.ascontiguousarray`` (a copy).
    Outputs are new arrays, or the ``out=`` array filled in place.
    """

    _free_fn = "tf_pattention_free"
    _errmsg_fn = "tf_pattention_errmsg"

    def __init__(self, params: Optional[PattentionParams] = None, *, n: Optional[int] = None,
                 d_in: Optional[int] = None, d_out: Optional[int] = None,
                 norm: Optional[NormLike] = None, scale_policy: Optional[ScalePolicyLike] = None,
                 tau: Optional[float] = None, seed: Optional[int] = None,
                 key_std: Optional[float] = None, value_std: Optional[float] = None) -> None:
        params = _params(PattentionParams, params, given_fields(PattentionParams, locals()))
        out = _lib.PattentionP()
        _lib.check(F.tf_pattention_create(ctypes.byref(params), ctypes.byref(out)))
        super().__init__(out)

    @classmethod
    def _borrowed_from(cls, ptr, owner):
        self = cls.__new__(cls)
        _lib.Handle.__init__(self, ptr, owner=owner, borrowed=True)
        return self

    @property
    def borrowed(self) -> bool:
        """True for a set owned by a model."""
        return self._borrowed

    @property
    def model(self) -> Optional["Model"]:
        """The owning :class:`Model` of a borrowed set (None otherwise)."""
        return self._owner

    def errmsg(self) -> str:
        """``tf_pattention_errmsg()``: the last error on this set ("" if none)."""
        return _lib._dec(F.tf_pattention_errmsg(self._h()))

    # -- shape and scale -------------------------------------------------
    @property
    def n(self) -> int:
        """Number of parameter tokens."""
        return int(F.tf_pattention_n(self._h()))

    @property
    def d_in(self) -> int:
        """Input width."""
        return int(F.tf_pattention_d_in(self._h()))

    @property
    def d_out(self) -> int:
        """Output width."""
        return int(F.tf_pattention_d_out(self._h()))

    @property
    def norm(self) -> Norm:
        """The :class:`Norm` (Theta) of this set."""
        return Norm(F.tf_pattention_norm(self._h()))

    @property
    def scale_policy(self) -> ScalePolicy:
        """The :class:`ScalePolicy` (follow_n or pinned)."""
        return ScalePolicy(F.tf_pattention_scale_policy(self._h()))

    @property
    def tau(self) -> float:
        """The scale tau.  Assigning sets it and pins it (tau > 0)."""
        return float(F.tf_pattention_tau(self._h()))

    @tau.setter
    def tau(self, value: float) -> None:
        self.set_tau(value)

    def set_tau(self, tau: float) -> None:
        """``tf_pattention_set_tau()``: sets tau (> 0) and pins it."""
        h = self._h()
        self._check(F.tf_pattention_set_tau(h, float(tau)))

    # -- tensors ---------------------------------------------------------
    def _get(self, fn, rows, cols, out):
        h = self._h()
        arr = _lib.out_array(out, (rows, cols), np.float32)
        self._check(fn(h, _lib.fptr(arr), arr.size))
        return arr

    def _set(self, fn, src, rows, cols, what):
        h = self._h()
        arr = _lib.as_f32_shaped(src, (rows, cols), what)
        self._check(fn(h, _lib.fptr(arr), arr.size))

    def get_keys(self, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Copy of the keys [n, d_in] (into ``out`` if given)."""
        return self._get(F.tf_pattention_get_keys, self.n, self.d_in, out)

    def set_keys(self, keys: ArrayLike) -> None:
        """Copies keys in: shape [n, d_in], or 1-D of that size (ShapeError
        otherwise, naming both)."""
        self._set(F.tf_pattention_set_keys, keys, self.n, self.d_in, "keys")

    def get_values(self, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Copy of the values [n, d_out] (into ``out`` if given)."""
        return self._get(F.tf_pattention_get_values, self.n, self.d_out, out)

    def set_values(self, values: ArrayLike) -> None:
        """Copies values in: shape [n, d_out], or 1-D of that size."""
        self._set(F.tf_pattention_set_values, values, self.n, self.d_out, "values")

    def get_key_grad(self, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Copy of the accumulated key gradient [n, d_in]."""
        return self._get(F.tf_pattention_get_key_grad, self.n, self.d_in, out)

    def get_value_grad(self, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Copy of the accumulated value gradient [n, d_out]."""
        return self._get(F.tf_pattention_get_value_grad, self.n, self.d_out, out)

    keys = property(get_keys, set_keys, doc="Keys [n, d_in] (a copy; assign to set).")
    values = property(get_values, set_values, doc="Values [n, d_out] (a copy; assign to set).")
    key_grad = property(get_key_grad, doc="Accumulated key gradient [n, d_in] (a copy).")
    value_grad = property(get_value_grad, doc="Accumulated value gradient [n, d_out] (a copy).")

    # -- compute ---------------------------------------------------------
    def _rows(self, X: ArrayLike, width: int, what: str) -> np.ndarray:
        rows = _lib.as_f32(X)
        if rows.ndim == 1:
            rows = rows.reshape(1, -1)
        if rows.ndim != 2 or rows.shape[1] != width:
            raise errors.ShapeError(2, "%s has shape %s; the set needs [N, %d]"
                                    % (what, tuple(rows.shape), width))
        if rows.shape[0] == 0:
            raise errors.ShapeError(2, "%s has no rows" % what)
        return rows

    def forward(self, X: ArrayLike, out: Optional[np.ndarray] = None) -> np.ndarray:
        """``Y [N, d_out] = Pattention(X [N, d_in])`` (``tf_pattention_forward``).
        ``X`` is used in place if C-contiguous float32, else converted (a
        copy); a 1-D X is one row.  Keeps what backward needs."""
        h = self._h()
        d_in, d_out = self.d_in, self.d_out
        x = self._rows(X, d_in, "X")
        Y = _lib.out_array(out, (x.shape[0], d_out), np.float32)
        self._check(F.tf_pattention_forward(h, x.shape[0], _lib.fptr(x), _lib.fptr(Y)))
        return Y

    __call__ = forward

    def backward(self, X: ArrayLike, dY: ArrayLike, want_dX: bool = True,
                 out: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        """Backward of the latest forward, which must have had this same X
        (``tf_pattention_backward``).  Accumulates dK, dV into the set and
        returns dX [N, d_in] (None if ``want_dX`` is false)."""
        h = self._h()
        d_in, d_out = self.d_in, self.d_out
        x = self._rows(X, d_in, "X")
        dy = self._rows(dY, d_out, "dY")
        if dy.shape[0] != x.shape[0]:
            raise errors.ShapeError(2, "dY has %d rows, X %d" % (dy.shape[0], x.shape[0]))
        dX = _lib.out_array(out, x.shape, np.float32) if want_dX else None
        self._check(F.tf_pattention_backward(h, x.shape[0], _lib.fptr(x), _lib.fptr(dy),
                                             _lib.fptr(dX)))
        return dX

    def zero_grad(self) -> None:
        """Zeroes the accumulated gradients."""
        h = self._h()
        self._check(F.tf_pattention_zero_grad(h))

    def grow(self, new_n: int, params: Optional[GrowParams] = None, **fields: Any) -> None:
        """``tf_pattention_grow()``: appends ``new_n - n`` parameter tokens
        (new_n > n), initialised per :class:`GrowParams` (``params`` and/or
        fields such as ``key_init="random"``, ``scale_policy="follow_n"``).
        On failure the set is unchanged.  Growing a borrowed set updates its
        model's slot numbers."""
        h = self._h()
        gp = grow_params(params, **fields)
        self._check(F.tf_pattention_grow(h, int(new_n), None if gp is None else ctypes.byref(gp)))

    def __repr__(self):
        if self.closed:
            return "<Pattention closed>"
        return "<Pattention n=%d d_in=%d d_out=%d norm=%s tau=%g%s>" % (
            self.n, self.d_in, self.d_out, self.norm.name.lower(), self.tau,
            " borrowed" if self._borrowed else "")
