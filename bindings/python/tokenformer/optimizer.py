"""AdamW with clipping, warmup + cosine schedule, accumulation (``tf_optimizer``)."""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from . import _lib
from ._lib import F
from .enums import LrRestartLike
from .params import OptimizerParams, given_fields

if TYPE_CHECKING:
    from .model import Model

__all__ = ["Optimizer", "schedule_lr"]


def schedule_lr(params: OptimizerParams, t: int) -> float:
    """The warmup + cosine learning rate an :class:`OptimizerParams` gives
    step t (0 for t < 1), without an optimizer (``tf_schedule_lr``)."""
    if not isinstance(params, OptimizerParams):
        raise TypeError("params must be an OptimizerParams, not %s" % type(params).__name__)
    return float(F.tf_schedule_lr(ctypes.byref(params), int(t)))


class Optimizer(_lib.Handle):
    """Optimizer state (zero moments, step 0) bound to a :class:`Model`.

    ``Optimizer(model, lr=1e-3, warmup_steps=10)`` (library defaults plus
    fields; None keeps a default) or ``Optimizer(model, params)`` (which the
    fields then override).  The optimizer keeps a
    reference to its model object, so the model outlives it; closing the
    model closes the optimizer.
    """

    _free_fn = "tf_optimizer_free"
    _errmsg_fn = "tf_optimizer_errmsg"

    def __init__(self, model: "Model", params: Optional[OptimizerParams] = None, *,
                 lr: Optional[float] = None, min_lr: Optional[float] = None,
                 beta1: Optional[float] = None, beta2: Optional[float] = None,
                 eps: Optional[float] = None, weight_decay: Optional[float] = None,
                 clip_grad: Optional[float] = None, warmup_steps: Optional[int] = None,
                 decay_steps: Optional[int] = None,
                 grad_accum_steps: Optional[int] = None,
                 lr_restart: Optional[LrRestartLike] = None,
                 lr_restart_step: Optional[int] = None, lr_restart_lr: Optional[float] = None,
                 lr_restart_min_lr: Optional[float] = None,
                 lr_restart_warmup_steps: Optional[int] = None,
                 lr_restart_decay_steps: Optional[int] = None,
                 lr_restart_factor: Optional[float] = None) -> None:
        fields = given_fields(OptimizerParams, locals())
        if params is None:
            params = OptimizerParams(**fields)
        elif not isinstance(params, OptimizerParams):
            raise TypeError("params must be an OptimizerParams, not %s" % type(params).__name__)
        elif fields:
            params = params.copy().update(**fields)
        mh = model._h()
        out = _lib.OptimizerP()
        _lib.check(F.tf_optimizer_create(mh, ctypes.byref(params), ctypes.byref(out)),
                   F.tf_model_errmsg, mh)
        _lib.Handle.__init__(self, out, keepalive=model)
        model._add_dependent(self)

    @property
    def model(self) -> Optional["Model"]:
        """The :class:`Model` this optimizer is bound to (None once closed)."""
        return getattr(self, "_keepalive", None)

    def errmsg(self) -> str:
        """``tf_optimizer_errmsg()``: the last error on this optimizer."""
        return _lib._dec(F.tf_optimizer_errmsg(self._h()))

    def step(self) -> float:
        """``tf_optimizer_step()``: one step with the model's accumulated
        gradients, which are then zeroed.  Returns the global gradient norm
        before clipping.  NonFiniteError (nothing changed) for NaN/inf."""
        h = self._h()
        gn = ctypes.c_float()
        self._check(F.tf_optimizer_step(h, ctypes.byref(gn)))
        return float(gn.value)

    def lr_at(self, t: int) -> float:
        """The schedule's learning rate at step t (t >= 1)."""
        return float(F.tf_optimizer_lr_at(self._h(), int(t)))

    @property
    def step_count(self) -> int:
        """Steps taken so far (restored by Model.load with this optimizer)."""
        return int(F.tf_optimizer_step_count(self._h()))

    def get_params(self) -> OptimizerParams:
        """``tf_optimizer_get_params()``: a copy of the hyperparameters."""
        h = self._h()
        p = OptimizerParams()
        self._check(F.tf_optimizer_get_params(h, ctypes.byref(p)))
        return p

    def set_params(self, params: Optional[OptimizerParams] = None, **fields: Any) -> None:
        """``tf_optimizer_set_params()``: replaces the hyperparameters (moments
        and step count kept).  With fields only, the current values are
        changed by name: ``opt.set_params(lr=3e-4, decay_steps=200)``."""
        h = self._h()
        if params is None:
            params = self.get_params()
        elif not isinstance(params, OptimizerParams):
            raise TypeError("params must be an OptimizerParams, not %s" % type(params).__name__)
        else:
            params = params.copy()
        params.update(**fields)
        self._check(F.tf_optimizer_set_params(h, ctypes.byref(params)))

    params = property(get_params, set_params, doc="The hyperparameters (a copy; assign to set).")

    def get_moment(self, name: str, which: int,
                   out: Optional[np.ndarray] = None) -> np.ndarray:
        """Copy of a tensor's first (``which=0``) or second (``which=1``)
        AdamW moment, shaped like the tensor."""
        h = self._h()
        model = self.model
        assert model is not None  # an open optimizer keeps its model
        shape = model.tensor_shape(name)
        arr = _lib.out_array(out, shape, np.float32)
        self._check(F.tf_optimizer_get_moment(h, _lib.name_arg(name), int(which),
                                              _lib.fptr(arr), arr.size))
        return arr

    def __repr__(self):
        if self.closed:
            return "<Optimizer closed>"
        p = self.get_params()
        return "<Optimizer step=%d lr=%g>" % (self.step_count, p.lr)
