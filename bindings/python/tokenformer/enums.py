"""The C enums as Python ``IntEnum`` classes.

Everywhere the bindings take one of these, they also accept the plain
integer or the name as a string, case-insensitively (``"softmax"``,
``"SOFTMAX"``, ``Norm.SOFTMAX`` and ``2`` are the same norm).
"""

from __future__ import annotations

import enum
from typing import Dict, Union

__all__ = ["Status", "Norm", "ScalePolicy", "KeyInit", "LrRestart", "SetKind", "DataFormat",
           "Split", "DType", "NormLike", "ScalePolicyLike", "KeyInitLike", "LrRestartLike",
           "SetKindLike", "DataFormatLike", "SplitLike", "DTypeLike"]


class _CEnum(enum.IntEnum):
    """An IntEnum that coerces ints and (case-insensitive) names."""

    @classmethod
    def coerce(cls, value: Union["_CEnum", int, str]) -> "_CEnum":
        """``cls`` member for a member, an int or a name; ValueError otherwise."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.strip().upper().replace("-", "_")
            aliases: Dict[str, str] = getattr(cls, "_aliases", dict)()
            key = aliases.get(key, key)
            try:
                return cls[key]
            except KeyError:
                raise ValueError("%r is not a %s (one of: %s)" % (
                    value, cls.__name__, ", ".join(m.name.lower() for m in cls))) from None
        if isinstance(value, bool):
            raise TypeError("%s: a bool is not an enum value" % cls.__name__)
        try:
            return cls(int(value))
        except (ValueError, TypeError):
            raise ValueError("%r is not a %s (one of: %s)" % (
                value, cls.__name__,
                ", ".join("%s=%d" % (m.name.lower(), m.value) for m in cls))) from None


class Status(_CEnum):
    """``tf_status``: TF_OK and the error codes."""
    OK = 0
    ERR_ARGUMENT = 1
    ERR_SHAPE = 2
    ERR_NOMEM = 3
    ERR_IO = 4
    ERR_FORMAT = 5
    ERR_CONFIG = 6
    ERR_NONFINITE = 7
    ERR_STATE = 8
    ERR_RANGE = 9
    ERR_NOT_FOUND = 10


class Norm(_CEnum):
    """``tf_norm_type``: the Pattention score normalisation Theta."""
    L2_NORM_GELU = 0
    GELU_L2_NORM = 1
    SOFTMAX = 2


class ScalePolicy(_CEnum):
    """``tf_scale_policy``: whether tau follows n on growth or stays pinned."""
    FOLLOW_N = 0
    PINNED = 1


class KeyInit(_CEnum):
    """``tf_key_init``: initialisation of the keys of grown parameter tokens."""
    ZERO = 0
    RANDOM = 1


class LrRestart(_CEnum):
    """``tf_lr_restart``: what a growth does to the learning-rate schedule
    (``GrowParams.lr_schedule``) and the restart an optimizer's schedule is
    in (``OptimizerParams.lr_restart``)."""
    KEEP = 0
    RESTART = 1
    CONTINUE = 2


class SetKind(_CEnum):
    """``tf_set_kind``: which Pattention set of a layer (``"mlp"`` = FFN)."""
    QUERY = 0
    KEY = 1
    VALUE = 2
    PROJ = 3
    FFN = 4

    @staticmethod
    def _aliases():
        return {"MLP": "FFN"}


class DataFormat(_CEnum):
    """``tf_data_format``: token file formats of :class:`tokenformer.Dataset`."""
    AUTO = 0
    BYTES = 1
    U16 = 2
    LLMC = 3


class DType(_CEnum):
    """``tf_dtype``: the number formats :meth:`tokenformer.Model.export`
    writes parameters in."""
    F32 = 0
    BF16 = 1


class Split(_CEnum):
    """``tf_split``: the training stream or the held-out validation tail."""
    TRAIN = 0
    VAL = 1

    @staticmethod
    def _aliases():
        return {"VALIDATION": "VAL"}


# What the bindings accept wherever they take an enum: a member, its int or its name.
NormLike = Union[Norm, int, str]
ScalePolicyLike = Union[ScalePolicy, int, str]
KeyInitLike = Union[KeyInit, int, str]
LrRestartLike = Union[LrRestart, int, str]
SetKindLike = Union[SetKind, int, str]
DataFormatLike = Union[DataFormat, int, str]
DTypeLike = Union[DType, int, str]
SplitLike = Union[Split, int, str]
