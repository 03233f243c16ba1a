"""tokenformer -- Python bindings (ctypes + numpy) of libtokenformer.

TokenFormer is a Transformer whose linear projections are *Pattention*
layers (attention from tokens to learnable key/value parameter tokens), so
a trained model grows by appending parameter tokens.  These bindings cover
the whole public C API (``include/tokenformer.h``, which is the manual):

=========================  ====================================================
runtime                    version_number, version_string, init,
                           set_num_threads, get_num_threads, get_info,
                           status_name, last_error, norm_type_name
Pattention sets            :class:`Pattention`, :class:`PattentionParams`,
                           :class:`GrowParams`
configurations             :class:`Config`
model                      :class:`Model`, :class:`ModelParams`
                           (forward/backward, named tensors, growth,
                           checkpoints: save, export, load, open, load_grown),
                           checkpoint_info
optimizer                  :class:`Optimizer`, :class:`OptimizerParams`
datasets                   :class:`Dataset` (one file, sets of shards: open_files,
                           open_glob; sources()), :class:`DatasetParams`
image datasets             :class:`ImageDataset`, :class:`ImageAugParams`
inference                  :class:`Decoder` (prefill, step, generate, score),
                           :class:`Sampler`, sample, :class:`SamplerParams`,
                           official_sampler_params, bytes_to_tokens,
                           tokens_to_bytes, tokens_to_text
tokenizer                  :class:`Tokenizer` (a Hugging Face tokenizer.json,
                           byte-level BPE: GPT-2, GPT-NeoX-20B)
errors                     :class:`TokenformerError` and one subclass per status
=========================  ====================================================

Conventions
-----------
* Arrays are numpy float32 (token ids int32), row-major.  Inputs that are
  already C-contiguous arrays of the right dtype are passed to C without a
  copy; anything else is converted with ``np.ascontiguousarray`` (a copy).
  Conversions that would change a value are refused instead: token ids
  that are bool or float (ArgumentTypeError) or beyond int32
  (ArgumentOverflowError), finite float64 values beyond float32's range
  (ArgumentOverflowError), arrays copied into a tensor whose shape they do
  not have (ShapeError; 1-D of the right size is read in C order), and
  names or paths with a NUL byte (ArgumentError).
  Outputs are new ``np.empty`` arrays filled in place by the library, or the
  caller's ``out=`` array (checked: C-contiguous, dtype, size).
* Every failed call raises the exception of its status with the library's
  message (see :mod:`tokenformer.errors`).  ``tokenformer.IOError`` (an
  OSError subclass) is left out of ``__all__`` so that a star import does
  not shadow the built-in name; ``TokenformerIOError`` is the same class.
* Parameter structs always start from the library's ``*_params_init()``
  and are changed by field name: ``ModelParams(hidden_size=128)``; most
  constructors take the fields directly: ``Model(hidden_size=128)``.
* Handles have ``close()``, are context managers, and free themselves once
  when garbage-collected.  Using a closed handle raises ClosedError.
  Ownership follows the C API: the model owns its Pattention sets (borrowed
  views keep the model object alive); optimizers and decoders keep their
  model alive; closing a model closes them.
* A handle must not be used from two threads at once (the C rule); the
  GIL is released during library calls.

Finding the library
-------------------
``$TOKENFORMER_LIBRARY`` (a path), else ``libtokenformer.so.0`` in this
package's directory (``make install`` puts a relative symlink there to the
installed ``$(LIBDIR)/libtokenformer.so.0``; the package goes to
``$(PYTHONDIR)/tokenformer``, by default ``$(PREFIX)/lib/python3/dist-packages``),
else ``build/libtokenformer.so.0`` of the source tree the package sits in
(``bindings/python/tokenformer``), else the system loader.  The library
loaded is :data:`library_path`.  Needs Python 3 and numpy (Debian:
``/usr/bin/python3`` with ``python3-numpy``).
"""

from . import _lib
from ._lib import library_path, missing_symbols
from .config import Config
from .dataset import Dataset, Source
from .enums import (DataFormat, DType, KeyInit, LrRestart, Norm, ScalePolicy, SetKind, Split,
                    Status)
from .errors import (ArgumentError, ArgumentOverflowError, ArgumentTypeError, ClosedError,
                     ConfigError, FormatError, IOError, NoMemoryError, NonFiniteError,
                     NotFoundError, RangeError, ShapeError, StateError, TokenformerError,
                     TokenformerIOError)
from .images import ImageDataset
from .inference import (Decoder, Sampler, bytes_to_tokens, official_sampler_params, sample,
                        sampler_params, tokens_to_bytes, tokens_to_text)
from .model import CheckpointInfo, ForwardResult, Model, checkpoint_info
from .optimizer import Optimizer, schedule_lr
from .params import (DatasetParams, GrowParams, ImageAugParams, ModelParams, OptimizerParams,
                     PattentionParams, SamplerParams, VisionParams)
from .pattention import Pattention
from .runtime import (get_info, get_num_threads, init, last_error, norm_type_name,
                      set_num_threads, status_name, version_number, version_string)
from .tokenizer import Tokenizer

#: The version of these bindings (the header version they were written for).
__version__ = "0.1.0"

__all__ = [
    "library_path", "missing_symbols", "have",
    "version_number", "version_string", "init", "set_num_threads", "get_num_threads",
    "get_info", "status_name", "last_error", "norm_type_name",
    "Status", "Norm", "ScalePolicy", "KeyInit", "LrRestart", "SetKind", "DataFormat", "Split",
    "DType",
    "PattentionParams", "GrowParams", "ModelParams", "VisionParams", "OptimizerParams",
    "SamplerParams", "DatasetParams",
    "Pattention", "Config", "Model", "ForwardResult", "CheckpointInfo", "checkpoint_info",
    "Optimizer", "schedule_lr", "Dataset", "Source",
    "ImageDataset", "ImageAugParams",
    "Decoder", "Sampler", "sample", "sampler_params", "official_sampler_params",
    "bytes_to_tokens", "tokens_to_bytes",
    "tokens_to_text", "Tokenizer",
    "TokenformerError", "ArgumentError", "ShapeError", "NoMemoryError",
    "TokenformerIOError", "FormatError", "ConfigError", "NonFiniteError", "StateError",
    "RangeError", "NotFoundError", "ClosedError", "ArgumentTypeError", "ArgumentOverflowError",
]


def have(name: str) -> bool:
    """True if the loaded library exports the C function ``name`` (e.g.
    ``"tf_decoder_create"``); bound functions it lacks raise
    NotImplementedError."""
    return _lib.have(name)
