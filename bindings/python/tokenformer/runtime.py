"""Versions, the runtime (BLIS kernel set, threads), status names, errors."""

from __future__ import annotations

import ctypes
from typing import Any, Dict, Optional

from . import _lib
from ._lib import F, check
from .enums import Norm, NormLike
from .params import Info

__all__ = ["version_number", "version_string", "status_name", "last_error", "init",
           "set_num_threads", "get_num_threads", "get_info", "norm_type_name"]


def version_number() -> int:
    """``tf_version_number()``: MAJOR * 1000000 + MINOR * 1000 + PATCH of the
    loaded library."""
    return int(F.tf_version_number())


def version_string() -> str:
    """``tf_version_string()``: the loaded library's version, e.g. ``"0.1.0"``."""
    return _lib._dec(F.tf_version_string())


status_name = _lib.status_name
last_error = _lib.last_error


def init(blis_arch: Optional[str] = None) -> None:
    """``tf_init()``: sets up the runtime now, optionally choosing the BLIS
    kernel set (``"auto"``, ``"blis"`` or a configuration name such as
    ``"skx"``; None reads TF_BLIS_ARCH).  Calling it again with a different
    choice once the runtime is up raises StateError."""
    check(F.tf_init(None if blis_arch is None else _lib.name_arg(blis_arch)))


def set_num_threads(n: int) -> None:
    """``tf_set_num_threads()``: threads for GEMMs and element-wise kernels,
    process-wide (n >= 1; ArgumentError otherwise).  Counts above 4 per
    online CPU (or 1024) are lowered to that bound: see
    :func:`get_num_threads` for the count in effect."""
    check(F.tf_set_num_threads(int(n)))


def get_num_threads() -> int:
    """``tf_get_num_threads()``: the current process-wide thread count."""
    return int(F.tf_get_num_threads())


def get_info() -> Dict[str, Any]:
    """``tf_get_info()`` as a dict: version_number, version_string,
    blis_version, blis_arch (the kernel set that runs), blis_arch_source,
    cpu_avx512, cpu_avx2, blis_arch_generic (bools), num_threads,
    kernel_arch, kernel_arch_source (the element-wise kernels' instruction
    set and why, see TF_ARCH) and bf16_kernel (the product bfloat16 weights
    run through: "avx512_bf16", "avx512", "avx2" or "plain").
    Initialises the runtime if needed."""
    info = Info()
    info.struct_size = ctypes.sizeof(Info)
    check(F.tf_get_info(ctypes.byref(info)))
    out = {}
    for name, typ in Info._fields_:
        if name == "struct_size":
            continue
        v = getattr(info, name)
        if typ is ctypes.c_char_p:
            v = _lib._dec(v)
        elif name.startswith("cpu_") or name == "blis_arch_generic":
            v = bool(v)
        out[name] = v
    return out


def norm_type_name(norm: NormLike) -> str:
    """``tf_norm_type_name()``: ``"l2_norm_gelu"`` etc. for a norm (an enum
    member, int or name)."""
    return _lib._dec(F.tf_norm_type_name(int(Norm.coerce(norm))))
