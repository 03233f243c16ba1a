"""Exceptions raised by the tokenformer bindings.

Every non-zero ``tf_status`` returned by libtokenformer becomes an exception
of the class registered for that status, carrying the status code and the
library's own message (the handle's ``*_errmsg()`` or ``tf_last_error()``).

=====================  ==================  ==============================
status                 class               also a
=====================  ==================  ==============================
TF_ERR_ARGUMENT (1)    ArgumentError       ValueError
TF_ERR_SHAPE (2)       ShapeError          ValueError
TF_ERR_NOMEM (3)       NoMemoryError       MemoryError
TF_ERR_IO (4)          IOError             OSError
TF_ERR_FORMAT (5)      FormatError         ValueError
TF_ERR_CONFIG (6)      ConfigError         ValueError
TF_ERR_NONFINITE (7)   NonFiniteError      ArithmeticError
TF_ERR_STATE (8)       StateError          RuntimeError
TF_ERR_RANGE (9)       RangeError          IndexError
TF_ERR_NOT_FOUND (10)  NotFoundError       KeyError
=====================  ==================  ==============================

All of them derive from :class:`TokenformerError`.  Using a handle after
``close()`` raises :class:`ClosedError` (a StateError and a ValueError, like
I/O on a closed Python file).

Arguments the C types cannot carry faithfully are refused by the bindings
before any call, with an ArgumentError that is also the built-in exception
Python would use: :class:`ArgumentTypeError` (a TypeError: bool or float
arrays as token ids, a name that is not a string) and
:class:`ArgumentOverflowError` (an OverflowError: ids beyond int32, float64
values beyond float32's range).  Strings with a NUL byte, which C would cut
short, raise ArgumentError (a ValueError, as ``open()`` does).

Note that :class:`IOError` here is ``tokenformer.IOError``, a subclass of
the built-in ``OSError``; it does not replace the built-in name unless you
``from tokenformer import *``.
"""

from __future__ import annotations

import builtins as _builtins
from typing import Optional, Type

__all__ = [
    "TokenformerError", "ArgumentError", "ShapeError", "NoMemoryError", "IOError",
    "TokenformerIOError", "FormatError", "ConfigError", "NonFiniteError", "StateError",
    "RangeError", "NotFoundError", "ClosedError", "ArgumentTypeError", "ArgumentOverflowError",
    "exception_for_status",
]

_STATUS_NAMES = {
    0: "TF_OK", 1: "TF_ERR_ARGUMENT", 2: "TF_ERR_SHAPE", 3: "TF_ERR_NOMEM", 4: "TF_ERR_IO",
    5: "TF_ERR_FORMAT", 6: "TF_ERR_CONFIG", 7: "TF_ERR_NONFINITE", 8: "TF_ERR_STATE",
    9: "TF_ERR_RANGE", 10: "TF_ERR_NOT_FOUND",
}


class TokenformerError(Exception):
    """Base class of every error the library reports.

    Attributes:
        status: the ``tf_status`` code (an int; see :class:`tokenformer.Status`).
        message: the library's message for the failed call.

    ``str(error)`` is the message; ``error.status_name`` the constant's name.
    """

    def __init__(self, status: int, message: Optional[str] = None) -> None:
        status = int(status)
        if message is None:
            message = _STATUS_NAMES.get(status, "TF_ERR_UNKNOWN")
        # One positional argument only: OSError would read two as errno and
        # strerror.  args is then set to what pickling needs.
        super().__init__(message)
        self.args = (status, message)
        self.status = status
        self.message = message

    @property
    def status_name(self) -> str:
        """The status constant's name, e.g. ``"TF_ERR_SHAPE"``."""
        return _STATUS_NAMES.get(self.status, "TF_ERR_UNKNOWN")

    def __str__(self):
        return self.message

    def __repr__(self):
        return "%s(%s, %r)" % (type(self).__name__, self.status_name, self.message)


class ArgumentError(TokenformerError, ValueError):
    """TF_ERR_ARGUMENT: a NULL handle or pointer, a zero size, a bad enum value."""


class ShapeError(TokenformerError, ValueError):
    """TF_ERR_SHAPE: sizes or shapes disagree (the message names both)."""


class NoMemoryError(TokenformerError, _builtins.MemoryError):
    """TF_ERR_NOMEM: an allocation failed; nothing was changed."""


class IOError(TokenformerError, _builtins.OSError):  # noqa: A001 (documented name)
    """TF_ERR_IO: open/read/write/fsync/rename failed.  A subclass of OSError
    (``errno`` is None: the message says what failed)."""


#: An alias of :class:`IOError` that does not shadow the built-in name.
TokenformerIOError = IOError


class FormatError(TokenformerError, ValueError):
    """TF_ERR_FORMAT: corrupt, truncated or unsupported file content."""


class ConfigError(TokenformerError, ValueError):
    """TF_ERR_CONFIG: a configuration value is missing or invalid (the
    message names the key and its line)."""


class NonFiniteError(TokenformerError, ArithmeticError):
    """TF_ERR_NONFINITE: NaN or infinity in a loss or gradient."""


class StateError(TokenformerError, RuntimeError):
    """TF_ERR_STATE: a call out of order (e.g. backward before forward)."""


class RangeError(TokenformerError, IndexError):
    """TF_ERR_RANGE: a token id, position or index out of range."""


class NotFoundError(TokenformerError, KeyError):
    """TF_ERR_NOT_FOUND: no tensor, key or set by that name."""


class ClosedError(StateError, ValueError):
    """A handle was used after ``close()`` (or after the object that owns it
    was closed).  Raised by the bindings before any library call."""

    def __init__(self, message: str) -> None:
        super().__init__(8, message)
        self.args = (message,)

    def __reduce__(self):
        return (type(self), (self.message,))


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument of a type the C call cannot take as meant (e.g. a bool or
    float array as token ids).  Raised by the bindings before any library
    call; status TF_ERR_ARGUMENT."""

    def __init__(self, message: str) -> None:
        super().__init__(1, message)

    def __reduce__(self):
        return (type(self), (self.message,))


class ArgumentOverflowError(ArgumentError, OverflowError):
    """A value that does not fit the C type it is converted to (a token id
    beyond int32, a float64 beyond float32's range): converting would wrap it
    or make it infinite.  Raised by the bindings before any library call;
    status TF_ERR_ARGUMENT."""

    def __init__(self, message: str) -> None:
        super().__init__(1, message)

    def __reduce__(self):
        return (type(self), (self.message,))


_BY_STATUS = {
    1: ArgumentError, 2: ShapeError, 3: NoMemoryError, 4: IOError, 5: FormatError,
    6: ConfigError, 7: NonFiniteError, 8: StateError, 9: RangeError, 10: NotFoundError,
}


def exception_for_status(status: int) -> Type[TokenformerError]:
    """The exception class for a ``tf_status`` code (TokenformerError for an
    unknown code)."""
    return _BY_STATUS.get(int(status), TokenformerError)
