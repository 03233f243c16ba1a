"""Configurations: the official TokenFormer YAML (``tf_config``)."""

from __future__ import annotations

import ctypes
from typing import Any, Iterable, List, Optional, Union

from . import _lib
from ._lib import F, PathLike
from .params import ModelParams, OptimizerParams

__all__ = ["Config"]


class Config(_lib.Handle):
    """A parsed configuration.  ``Config.load(path)`` or ``Config.parse(text)``.

    Scalar look-ups of a top-level key or a dotted path into nested
    mappings and sequences (``"optimizer.params.betas.1"``): :meth:`get_int`,
    :meth:`get_double`, :meth:`get_bool`, :meth:`get_string` (NotFoundError
    if absent, ConfigError naming key and line if of another type), or
    :meth:`get` with a default.  ``key in cfg`` tests presence.
    """

    _free_fn = "tf_config_free"
    _errmsg_fn = "tf_config_errmsg"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("use Config.load(path) or Config.parse(text)")

    @classmethod
    def _wrap(cls, ptr):
        self = cls.__new__(cls)
        _lib.Handle.__init__(self, ptr)
        return self

    @classmethod
    def load(cls, path: PathLike) -> "Config":
        """``tf_config_load()``: parses a YAML file.  Errors name key and line."""
        out = _lib.ConfigP()
        _lib.check(F.tf_config_load(_lib.path_arg(path), ctypes.byref(out)))
        return cls._wrap(out)

    @classmethod
    def parse(cls, text: Union[str, bytes]) -> "Config":
        """``tf_config_parse()``: parses YAML text (str or bytes) in memory."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        out = _lib.ConfigP()
        _lib.check(F.tf_config_parse(data, len(data), ctypes.byref(out)))
        return cls._wrap(out)

    def errmsg(self) -> str:
        """``tf_config_errmsg()``: the last error on this config."""
        return _lib._dec(F.tf_config_errmsg(self._h()))

    def use_keys(self, keys: Iterable[str]) -> None:
        """``tf_config_use_keys()``: declares the top-level keys the program
        reads itself, so that :attr:`ignored_keys` leaves them out."""
        names = [_lib.name_arg(k) for k in keys]
        arr = (ctypes.c_char_p * max(len(names), 1))(*names)
        self._check(F.tf_config_use_keys(self._h(), arr, len(names)))

    def suggest_key(self, key: str) -> Optional[str]:
        """``tf_config_suggest_key()``: the used key closest to a misspelt
        one ("did you mean"), or None."""
        s = F.tf_config_suggest_key(self._h(), _lib.name_arg(key))
        return _lib._dec(s) if s else None

    @property
    def ignored_keys(self) -> List[str]:
        """Top-level keys neither the library nor :meth:`use_keys` declared,
        in file order."""
        h = self._h()
        return [_lib._dec(F.tf_config_ignored_key(h, i))
                for i in range(F.tf_config_num_ignored(h))]

    def has(self, key: str) -> bool:
        """True if the key (or dotted path) is present."""
        return bool(F.tf_config_has(self._h(), _lib.name_arg(key)))

    __contains__ = has

    def get_int(self, key: str) -> int:
        """The integer value of a key (or dotted path)."""
        h = self._h()
        v = ctypes.c_int64()
        self._check(F.tf_config_get_int(h, _lib.name_arg(key), ctypes.byref(v)))
        return v.value

    def get_double(self, key: str) -> float:
        """The number value of a key (as float)."""
        h = self._h()
        v = ctypes.c_double()
        self._check(F.tf_config_get_double(h, _lib.name_arg(key), ctypes.byref(v)))
        return v.value

    def get_bool(self, key: str) -> bool:
        """The boolean value of a key (true/false/True/False)."""
        h = self._h()
        v = ctypes.c_int()
        self._check(F.tf_config_get_bool(h, _lib.name_arg(key), ctypes.byref(v)))
        return bool(v.value)

    def get_string(self, key: str) -> str:
        """The string value of a key (copied out of the config)."""
        h = self._h()
        v = ctypes.c_char_p()
        self._check(F.tf_config_get_string(h, _lib.name_arg(key), ctypes.byref(v)))
        return _lib._dec(v.value)

    def get(self, key: str, type: type = str, default: Any = None) -> Any:
        """``get_string``/``get_int``/``get_double``/``get_bool`` chosen by
        ``type`` (str, int, float, bool); ``default`` if the key is absent."""
        if not self.has(key):
            return default
        fn = {str: self.get_string, int: self.get_int, float: self.get_double,
              bool: self.get_bool}[type]
        return fn(key)

    def model_params(self) -> ModelParams:
        """``tf_config_model_params()``: the :class:`ModelParams` of the config."""
        h = self._h()
        p = ModelParams()
        self._check(F.tf_config_model_params(h, ctypes.byref(p)))
        return p

    def optimizer_params(self) -> OptimizerParams:
        """``tf_config_optimizer_params()``: the :class:`OptimizerParams`."""
        h = self._h()
        p = OptimizerParams()
        self._check(F.tf_config_optimizer_params(h, ctypes.byref(p)))
        return p

    def __repr__(self):
        return "<Config closed>" if self.closed else "<Config>"
