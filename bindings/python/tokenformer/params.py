"""Mirrors of the library's parameter structs.

The C API's rule is: obtain a params struct from the matching
``*_params_init()`` and change only the fields you need.  The classes
here follow it: ``ModelParams()`` (or ``ModelParams(hidden_size=128)``)
calls ``tf_model_params_init()`` and then sets the given fields *by
name*.  The bindings rely on the layout only through the field names and
types below; at import time they check that the library's ``struct_size``
equals ``ctypes.sizeof`` of each mirror and refuse to load otherwise.

Fields are plain attributes (``p.lr = 3e-4``).  Enum fields (``norm``,
``scale_policy``, ``key_init``) also accept names (``p.norm = "softmax"``).
Setting a field that does not exist raises AttributeError (a typo is not
silently ignored).  ``dict(p)``-style access: :meth:`_ParamsBase.as_dict`.
"""

from __future__ import annotations

import ctypes
from ctypes import c_double, c_int, c_int32, c_int64, c_size_t, c_uint64, c_char_p
from typing import Any, Dict, Optional, Type, TypeVar

from .enums import (DataFormat, DataFormatLike, KeyInit, KeyInitLike, LrRestart, LrRestartLike,
                    Norm, NormLike, ScalePolicy, ScalePolicyLike)

__all__ = ["PattentionParams", "GrowParams", "ModelParams", "VisionParams", "OptimizerParams",
           "SamplerParams", "DatasetParams", "ImageAugParams", "Info", "DataSource"]

_ENUM_FIELDS = {"norm": Norm, "scale_policy": ScalePolicy, "key_init": KeyInit,
                "lr_schedule": LrRestart, "lr_restart": LrRestart, "format": DataFormat}

_P = TypeVar("_P", bound="_ParamsBase")


def given_fields(cls: Type["_ParamsBase"], args: Dict[str, Any]) -> Dict[str, Any]:
    """The fields of params struct ``cls`` that are not None in ``args``
    (a ``locals()``): how the explicit keyword parameters of constructors
    become field settings (None keeps the library's default)."""
    names = [f[0] for f in cls._fields_ if f[0] != "struct_size"]
    return {name: args[name] for name in names if args.get(name) is not None}


class _ParamsBase(ctypes.Structure):
    """Common behaviour of the params mirrors (not instantiated itself)."""

    #: name of the C function filling the defaults (set by subclasses)
    _init_fn = ""

    def __init__(self, **fields: Any) -> None:
        from . import _lib  # late: _lib imports this module
        getattr(_lib.lib, self._init_fn)(ctypes.byref(self), ctypes.sizeof(self))
        self.update(**fields)

    @classmethod
    def default(cls: Type[_P], **fields: Any) -> _P:
        """The library's defaults, with ``fields`` set by name."""
        return cls(**fields)

    def update(self: _P, **fields: Any) -> _P:
        """Sets fields by name (enum fields accept names); returns self."""
        for name, value in fields.items():
            setattr(self, name, value)
        return self

    def copy(self: _P) -> _P:
        """An independent copy of this struct."""
        c = type(self).from_buffer_copy(self)
        return c

    def as_dict(self) -> Dict[str, Any]:
        """The fields (without struct_size) as a dict; enums as IntEnum."""
        out = {}
        for name, _ in self._fields_:
            if name == "struct_size":
                continue
            v = getattr(self, name)
            if name in _ENUM_FIELDS:
                try:
                    v = _ENUM_FIELDS[name](v)
                except ValueError:
                    pass
            out[name] = v
        return out

    def __setattr__(self, name, value):
        names = {f[0] for f in self._fields_}
        if name not in names:
            raise AttributeError("%s has no field %r (fields: %s)" % (
                type(self).__name__, name, ", ".join(sorted(names - {"struct_size"}))))
        if name == "struct_size":
            raise AttributeError("struct_size is set by the library's default params")
        if name in _ENUM_FIELDS:
            value = int(_ENUM_FIELDS[name].coerce(value))
        super().__setattr__(name, value)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable: not hashable

    def __repr__(self):
        parts = []
        for k, v in self.as_dict().items():
            parts.append("%s=%s" % (k, v.name.lower() if hasattr(v, "name") else repr(v)))
        return "%s(%s)" % (type(self).__name__, ", ".join(parts))


class PattentionParams(_ParamsBase):
    """``tf_pattention_params``: n, d_in, d_out, norm, scale_policy, tau
    (0: default from n; > 0: this value, pinned), seed, key_std, value_std."""
    _init_fn = "tf_pattention_params_init"
    _fields_ = [
        ("struct_size", c_size_t),
        ("n", c_int64),
        ("d_in", c_int64),
        ("d_out", c_int64),
        ("norm", c_int),
        ("scale_policy", c_int),
        ("tau", c_double),
        ("seed", c_uint64),
        ("key_std", c_double),
        ("value_std", c_double),
    ]

    def __init__(self, *, n: Optional[int] = None, d_in: Optional[int] = None,
                 d_out: Optional[int] = None, norm: Optional[NormLike] = None,
                 scale_policy: Optional[ScalePolicyLike] = None, tau: Optional[float] = None,
                 seed: Optional[int] = None, key_std: Optional[float] = None,
                 value_std: Optional[float] = None) -> None:
        super().__init__(**given_fields(PattentionParams, locals()))


class GrowParams(_ParamsBase):
    """``tf_grow_params``: key_init (zero/random), scale_policy (default
    pinned), key_std, value_std (<= 0: value_std_scale x the set's own),
    seed, value_std_scale; and what the growth does to training (applied by
    ``Model.grow`` with an optimizer): tau_ramp_steps, reset_optimizer,
    lr_schedule (keep/restart/continue), lr, min_lr, warmup_steps,
    decay_steps, end_step, lr_factor.  ``GrowParams()`` grows and changes
    nothing else; :meth:`recipe` is the recipe of experiments/scaling."""
    _init_fn = "tf_grow_params_init"
    _fields_ = [
        ("struct_size", c_size_t),
        ("key_init", c_int),
        ("scale_policy", c_int),
        ("key_std", c_double),
        ("value_std", c_double),
        ("seed", c_uint64),
        ("value_std_scale", c_double),
        ("tau_ramp_steps", c_int64),
        ("reset_optimizer", c_int32),
        ("lr_schedule", c_int),
        ("lr", c_double),
        ("min_lr", c_double),
        ("warmup_steps", c_int64),
        ("decay_steps", c_int64),
        ("end_step", c_int64),
        ("lr_factor", c_double),
    ]

    def __init__(self, *, key_init: Optional[KeyInitLike] = None,
                 scale_policy: Optional[ScalePolicyLike] = None, key_std: Optional[float] = None,
                 value_std: Optional[float] = None, seed: Optional[int] = None,
                 value_std_scale: Optional[float] = None, tau_ramp_steps: Optional[int] = None,
                 reset_optimizer: Optional[int] = None,
                 lr_schedule: Optional[LrRestartLike] = None, lr: Optional[float] = None,
                 min_lr: Optional[float] = None, warmup_steps: Optional[int] = None,
                 decay_steps: Optional[int] = None, end_step: Optional[int] = None,
                 lr_factor: Optional[float] = None) -> None:
        super().__init__(**given_fields(GrowParams, locals()))

    @classmethod
    def recipe(cls, **fields: Any) -> "GrowParams":
        """``tf_grow_recipe_params()``: the library's growth recipe (zero
        keys, values at 1/20 of the init's std, tau ramped over 300 steps,
        the lr restarted at the peak), with ``fields`` set by name."""
        from . import _lib  # late: _lib imports this module
        p = cls.__new__(cls)
        ctypes.memset(ctypes.addressof(p), 0, ctypes.sizeof(p))
        _lib.F.tf_grow_recipe_init(ctypes.byref(p), ctypes.sizeof(p))
        return p.update(**fields)


class ModelParams(_ParamsBase):
    """``tf_model_params``: num_layers, hidden_size, num_attention_heads,
    qkv/proj/ffn_slot_num, rotary_pct, rotary_emb_base, norm, vocab_size,
    seq_length, layernorm_epsilon, init_method_std, seed, scale_policy."""
    _init_fn = "tf_model_params_init"
    _fields_ = [
        ("struct_size", c_size_t),
        ("num_layers", c_int32),
        ("hidden_size", c_int32),
        ("num_attention_heads", c_int32),
        ("qkv_slot_num", c_int64),
        ("proj_slot_num", c_int64),
        ("ffn_slot_num", c_int64),
        ("rotary_pct", c_double),
        ("rotary_emb_base", c_double),
        ("norm", c_int),
        ("vocab_size", c_int64),
        ("seq_length", c_int64),
        ("layernorm_epsilon", c_double),
        ("init_method_std", c_double),
        ("seed", c_uint64),
        ("scale_policy", c_int),
    ]

    def __init__(self, *, num_layers: Optional[int] = None, hidden_size: Optional[int] = None,
                 num_attention_heads: Optional[int] = None, qkv_slot_num: Optional[int] = None,
                 proj_slot_num: Optional[int] = None, ffn_slot_num: Optional[int] = None,
                 rotary_pct: Optional[float] = None, rotary_emb_base: Optional[float] = None,
                 norm: Optional[NormLike] = None, vocab_size: Optional[int] = None,
                 seq_length: Optional[int] = None, layernorm_epsilon: Optional[float] = None,
                 init_method_std: Optional[float] = None, seed: Optional[int] = None,
                 scale_policy: Optional[ScalePolicyLike] = None) -> None:
        super().__init__(**given_fields(ModelParams, locals()))


class VisionParams(_ParamsBase):
    """``tf_vision_params``: the image classifier (image_size, channels,
    patch_size, num_classes, patch_slot_num, head_slot_num) and its layers
    (the layer fields of :class:`ModelParams`)."""
    _init_fn = "tf_vision_params_init"
    _fields_ = [
        ("struct_size", c_size_t),
        ("image_size", c_int32),
        ("channels", c_int32),
        ("patch_size", c_int32),
        ("num_classes", c_int32),
        ("patch_slot_num", c_int64),
        ("head_slot_num", c_int64),
        ("num_layers", c_int32),
        ("hidden_size", c_int32),
        ("num_attention_heads", c_int32),
        ("qkv_slot_num", c_int64),
        ("proj_slot_num", c_int64),
        ("ffn_slot_num", c_int64),
        ("norm", c_int),
        ("layernorm_epsilon", c_double),
        ("init_method_std", c_double),
        ("seed", c_uint64),
        ("scale_policy", c_int),
    ]

    def __init__(self, *, image_size: Optional[int] = None, channels: Optional[int] = None,
                 patch_size: Optional[int] = None, num_classes: Optional[int] = None,
                 patch_slot_num: Optional[int] = None, head_slot_num: Optional[int] = None,
                 num_layers: Optional[int] = None, hidden_size: Optional[int] = None,
                 num_attention_heads: Optional[int] = None, qkv_slot_num: Optional[int] = None,
                 proj_slot_num: Optional[int] = None, ffn_slot_num: Optional[int] = None,
                 norm: Optional[NormLike] = None, layernorm_epsilon: Optional[float] = None,
                 init_method_std: Optional[float] = None, seed: Optional[int] = None,
                 scale_policy: Optional[ScalePolicyLike] = None) -> None:
        super().__init__(**given_fields(VisionParams, locals()))


class OptimizerParams(_ParamsBase):
    """``tf_optimizer_params`` (AdamW): lr, min_lr, beta1, beta2, eps,
    weight_decay, clip_grad (0 disables), warmup_steps, decay_steps,
    grad_accum_steps; the schedule's restart (a growth sets it):
    lr_restart (keep/restart/continue), lr_restart_step, lr_restart_lr,
    lr_restart_min_lr, lr_restart_warmup_steps, lr_restart_decay_steps,
    lr_restart_factor."""
    _init_fn = "tf_optimizer_params_init"
    _fields_ = [
        ("struct_size", c_size_t),
        ("lr", c_double),
        ("min_lr", c_double),
        ("beta1", c_double),
        ("beta2", c_double),
        ("eps", c_double),
        ("weight_decay", c_double),
        ("clip_grad", c_double),
        ("warmup_steps", c_int64),
        ("decay_steps", c_int64),
        ("grad_accum_steps", c_int32),
        ("lr_restart", c_int),
        ("lr_restart_step", c_int64),
        ("lr_restart_lr", c_double),
        ("lr_restart_min_lr", c_double),
        ("lr_restart_warmup_steps", c_int64),
        ("lr_restart_decay_steps", c_int64),
        ("lr_restart_factor", c_double),
    ]

    def __init__(self, *, lr: Optional[float] = None, min_lr: Optional[float] = None,
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
        super().__init__(**given_fields(OptimizerParams, locals()))


class SamplerParams(_ParamsBase):
    """``tf_sampler_params``: temperature (0: greedy), top_k (0: off),
    top_p (1: off), seed."""
    _init_fn = "tf_sampler_params_init"
    _fields_ = [
        ("struct_size", c_size_t),
        ("temperature", c_double),
        ("top_k", c_int32),
        ("top_p", c_double),
        ("seed", c_uint64),
    ]

    def __init__(self, *, temperature: Optional[float] = None, top_k: Optional[int] = None,
                 top_p: Optional[float] = None, seed: Optional[int] = None) -> None:
        super().__init__(**given_fields(SamplerParams, locals()))


class DatasetParams(_ParamsBase):
    """``tf_dataset_params``: format (every file's; default auto), vocab_size
    (required), val_fraction (the validation tail when no validation files
    are given), max_resident (files held in memory at once, default 2)."""
    _init_fn = "tf_dataset_params_init"
    _fields_ = [
        ("struct_size", c_size_t),
        ("format", c_int),
        ("vocab_size", c_int64),
        ("val_fraction", c_double),
        ("max_resident", c_int),
    ]

    def __init__(self, *, format: Optional[DataFormatLike] = None,
                 vocab_size: Optional[int] = None, val_fraction: Optional[float] = None,
                 max_resident: Optional[int] = None) -> None:
        super().__init__(**given_fields(DatasetParams, locals()))


class DataSource(ctypes.Structure):
    """``tf_data_source`` (filled by ``tf_dataset_source``; use
    :meth:`tokenformer.Dataset.sources`)."""
    _fields_ = [
        ("struct_size", c_size_t),
        ("path", c_char_p),
        ("format", c_int),
        ("version", c_int),
        ("token_bytes", c_int),
        ("file_tokens", c_int64),
        ("num_tokens", c_int64),
    ]


class ImageAugParams(_ParamsBase):
    """``tf_image_aug_params``: shift (random shifts by up to k pixels,
    zero-padded; 0: off), hflip (1: random horizontal flips), mean and std
    (a pixel byte v becomes ``(v / 255 - mean) / std``)."""
    _init_fn = "tf_image_aug_params_init"
    _fields_ = [
        ("struct_size", c_size_t),
        ("shift", c_int32),
        ("hflip", c_int32),
        ("mean", c_double),
        ("std", c_double),
    ]

    def __init__(self, *, shift: Optional[int] = None, hflip: Optional[int] = None,
                 mean: Optional[float] = None, std: Optional[float] = None) -> None:
        super().__init__(**given_fields(ImageAugParams, locals()))


class Info(ctypes.Structure):
    """``tf_info`` (filled by ``tf_get_info``; use :func:`tokenformer.get_info`)."""
    _fields_ = [
        ("struct_size", c_size_t),
        ("version_number", c_int),
        ("version_string", c_char_p),
        ("blis_version", c_char_p),
        ("blis_arch", c_char_p),
        ("blis_arch_source", c_char_p),
        ("cpu_avx512", c_int),
        ("cpu_avx2", c_int),
        ("blis_arch_generic", c_int),
        ("num_threads", c_int),
    ]
