"""Loading libtokenformer and declaring every function's prototype.

Library lookup, first match wins:

1. ``$TOKENFORMER_LIBRARY``: a path to the shared library.  If it is set
   and cannot be loaded, the import fails (no silent fallback).
2. ``libtokenformer.so.0`` inside the package directory.  ``make install``
   puts a relative symbolic link there, to ``$(LIBDIR)/libtokenformer.so.0``,
   so an installed package always loads the library installed with it (no
   ldconfig, no LD_LIBRARY_PATH; it also works from a DESTDIR).
3. ``../../../build/libtokenformer.so.0`` relative to the package: the
   source tree's build directory (``bindings/python/tokenformer`` ->
   ``build/``), so the bindings work from a checkout after ``make``.
4. The system loader: ``libtokenformer.so.0`` (LD_LIBRARY_PATH, the ld.so
   cache), then ``ctypes.util.find_library("tokenformer")``.

Functions of the public header that the loaded library does not export
(an older library) are bound to stubs that raise NotImplementedError;
their names are in :data:`missing_symbols`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any, Optional, TypeVar, Union
from ctypes import (CFUNCTYPE, POINTER, c_char, c_char_p, c_double, c_float, c_int, c_int32,
                    c_int64, c_size_t, c_uint8, c_uint64, c_void_p)

import numpy as np

from . import errors
from .params import (DataSource, DatasetParams, GrowParams, ImageAugParams, InferenceParams, Info,
                     ModelParams, OptimizerParams, PattentionParams, SamplerParams, VisionParams)

#: A filesystem path as the bindings take it.
PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

ENV_VAR = "TOKENFORMER_LIBRARY"
SONAME = "libtokenformer.so.0"
#: The library major version (SONAME) these bindings are written for.
ABI_MAJOR = 0

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


def _candidates():
    """(description, path-or-name) pairs in lookup order, env var excluded."""
    out = [("package directory", os.path.join(_PKG_DIR, SONAME)),
           ("source tree build/", os.path.normpath(os.path.join(_PKG_DIR, "..", "..", "..",
                                                                "build", SONAME)))]
    return out


def _load():
    env = os.environ.get(ENV_VAR)
    if env:
        try:
            return ctypes.CDLL(env), env
        except OSError as e:
            raise ImportError("tokenformer: %s=%r cannot be loaded: %s" % (ENV_VAR, env, e)) \
                from None
    tried = []
    for what, path in _candidates():
        if os.path.exists(path):
            try:
                return ctypes.CDLL(path), os.path.realpath(path)
            except OSError as e:
                tried.append("%s (%s): %s" % (path, what, e))
        else:
            tried.append("%s (%s): not there" % (path, what))
    try:
        lib = ctypes.CDLL(SONAME)
        return lib, SONAME
    except OSError as e:
        tried.append("%s (system loader): %s" % (SONAME, e))
    found = ctypes.util.find_library("tokenformer")
    if found:
        try:
            return ctypes.CDLL(found), found
        except OSError as e:
            tried.append("%s (find_library): %s" % (found, e))
    else:
        tried.append("ctypes.util.find_library('tokenformer'): nothing")
    raise ImportError("tokenformer: cannot find libtokenformer; set %s to its path.  Tried:\n  %s"
                      % (ENV_VAR, "\n  ".join(tried)))


lib, library_path = _load()

# ---- opaque handle types (distinct pointer types: a model handle cannot be
# passed where a set is expected) ---------------------------------------------


class _Opaque(ctypes.Structure):
    _fields_: list = []


class tf_pattention(_Opaque):
    """Opaque ``struct tf_pattention``."""


class tf_config(_Opaque):
    """Opaque ``struct tf_config``."""


class tf_model(_Opaque):
    """Opaque ``struct tf_model``."""


class tf_optimizer(_Opaque):
    """Opaque ``struct tf_optimizer``."""


class tf_dataset(_Opaque):
    """Opaque ``struct tf_dataset``."""


class tf_decoder(_Opaque):
    """Opaque ``struct tf_decoder``."""


class tf_tokenizer(_Opaque):
    """Opaque ``struct tf_tokenizer``."""
class tf_image_dataset(_Opaque):
    """Opaque ``struct tf_image_dataset``."""


PattentionP = POINTER(tf_pattention)
ConfigP = POINTER(tf_config)
ModelP = POINTER(tf_model)
OptimizerP = POINTER(tf_optimizer)
DatasetP = POINTER(tf_dataset)
DecoderP = POINTER(tf_decoder)
TokenizerP = POINTER(tf_tokenizer)
ImageDatasetP = POINTER(tf_image_dataset)

Pf = POINTER(c_float)
Pi32 = POINTER(c_int32)
Pu8 = POINTER(c_uint8)
St = c_int  # tf_status
Enum = c_int

#: ``typedef int (*tf_token_callback)(void *user, const int32_t *ids, int batch)``
TokenCallback = CFUNCTYPE(c_int, c_void_p, Pi32, c_int)
#: ``typedef void (*tf_grad_ready_callback)(void *user, float *grads, size_t offset,
#: size_t count)``
GradReadyCallback = CFUNCTYPE(None, c_void_p, Pf, c_size_t, c_size_t)

# name: (restype, argtypes) -- every function of include/tokenformer.h.
PROTOTYPES = {
    # versions, errors, runtime
    "tf_version_number": (c_int, []),
    "tf_version_string": (c_char_p, []),
    "tf_status_name": (c_char_p, [Enum]),
    "tf_last_error": (c_char_p, []),
    "tf_init": (St, [c_char_p]),
    "tf_set_num_threads": (St, [c_int]),
    "tf_get_num_threads": (c_int, []),
    "tf_get_info": (St, [POINTER(Info)]),
    # Pattention sets
    "tf_norm_type_name": (c_char_p, [Enum]),
    "tf_pattention_params_init": (None, [POINTER(PattentionParams), c_size_t]),
    "tf_pattention_create": (St, [POINTER(PattentionParams), POINTER(PattentionP)]),
    "tf_pattention_free": (None, [PattentionP]),
    "tf_pattention_errmsg": (c_char_p, [PattentionP]),
    "tf_pattention_n": (c_int64, [PattentionP]),
    "tf_pattention_d_in": (c_int64, [PattentionP]),
    "tf_pattention_d_out": (c_int64, [PattentionP]),
    "tf_pattention_norm": (Enum, [PattentionP]),
    "tf_pattention_tau": (c_double, [PattentionP]),
    "tf_pattention_scale_policy": (Enum, [PattentionP]),
    "tf_pattention_set_tau": (St, [PattentionP, c_double]),
    "tf_pattention_get_keys": (St, [PattentionP, Pf, c_size_t]),
    "tf_pattention_set_keys": (St, [PattentionP, Pf, c_size_t]),
    "tf_pattention_get_values": (St, [PattentionP, Pf, c_size_t]),
    "tf_pattention_set_values": (St, [PattentionP, Pf, c_size_t]),
    "tf_pattention_get_key_grad": (St, [PattentionP, Pf, c_size_t]),
    "tf_pattention_get_value_grad": (St, [PattentionP, Pf, c_size_t]),
    "tf_pattention_forward": (St, [PattentionP, c_int64, Pf, Pf]),
    "tf_pattention_backward": (St, [PattentionP, c_int64, Pf, Pf, Pf]),
    "tf_pattention_zero_grad": (St, [PattentionP]),
    "tf_grow_params_init": (None, [POINTER(GrowParams), c_size_t]),
    "tf_grow_recipe_init": (None, [POINTER(GrowParams), c_size_t]),
    "tf_pattention_grow": (St, [PattentionP, c_int64, POINTER(GrowParams)]),
    # configurations
    "tf_config_load": (St, [c_char_p, POINTER(ConfigP)]),
    "tf_config_parse": (St, [c_char_p, c_size_t, POINTER(ConfigP)]),
    "tf_config_free": (None, [ConfigP]),
    "tf_config_errmsg": (c_char_p, [ConfigP]),
    "tf_config_use_keys": (St, [ConfigP, POINTER(c_char_p), c_int]),
    "tf_config_suggest_key": (c_char_p, [ConfigP, c_char_p]),
    "tf_config_num_ignored": (c_int, [ConfigP]),
    "tf_config_ignored_key": (c_char_p, [ConfigP, c_int]),
    "tf_config_has": (c_int, [ConfigP, c_char_p]),
    "tf_config_get_int": (St, [ConfigP, c_char_p, POINTER(c_int64)]),
    "tf_config_get_double": (St, [ConfigP, c_char_p, POINTER(c_double)]),
    "tf_config_get_bool": (St, [ConfigP, c_char_p, POINTER(c_int)]),
    "tf_config_get_string": (St, [ConfigP, c_char_p, POINTER(c_char_p)]),
    # the model
    "tf_model_params_init": (None, [POINTER(ModelParams), c_size_t]),
    "tf_config_model_params": (St, [ConfigP, POINTER(ModelParams)]),
    "tf_model_create": (St, [POINTER(ModelParams), POINTER(ModelP)]),
    "tf_model_free": (None, [ModelP]),
    "tf_model_errmsg": (c_char_p, [ModelP]),
    "tf_model_get_params": (St, [ModelP, POINTER(ModelParams)]),
    "tf_model_num_params": (c_int64, [ModelP]),
    "tf_model_pattention": (PattentionP, [ModelP, c_int, Enum]),
    "tf_model_num_tensors": (c_int, [ModelP]),
    "tf_model_tensor_name": (c_char_p, [ModelP, c_int]),
    "tf_model_tensor_shape": (St, [ModelP, c_char_p, POINTER(c_int64), POINTER(c_int)]),
    "tf_model_get_tensor": (St, [ModelP, c_char_p, Pf, c_size_t]),
    "tf_model_set_tensor": (St, [ModelP, c_char_p, Pf, c_size_t]),
    "tf_model_get_grad": (St, [ModelP, c_char_p, Pf, c_size_t]),
    "tf_model_set_grad": (St, [ModelP, c_char_p, Pf, c_size_t]),
    "tf_model_forward": (St, [ModelP, c_int, c_int, Pi32, Pi32, Pf, Pf]),
    "tf_vision_params_init": (None, [POINTER(VisionParams), c_size_t]),
    "tf_model_create_vision": (St, [POINTER(VisionParams), POINTER(ModelP)]),
    "tf_model_is_vision": (c_int, [ModelP]),
    "tf_model_get_vision_params": (St, [ModelP, POINTER(VisionParams)]),
    "tf_model_forward_images": (St, [ModelP, c_int, Pf, Pi32, Pf, Pf]),
    "tf_model_predict": (St, [ModelP, c_int, Pf, Pi32]),
    "tf_model_backward": (St, [ModelP]),
    "tf_model_zero_grad": (St, [ModelP]),
    "tf_model_set_label_smoothing": (St, [ModelP, c_double]),
    "tf_model_get_label_smoothing": (c_double, [ModelP]),
    # data-parallel training
    "tf_model_grad_buffer": (St, [ModelP, POINTER(Pf), POINTER(c_size_t)]),
    "tf_model_set_grad_ready_callback": (St, [ModelP, GradReadyCallback, c_void_p]),
    "tf_model_checksum": (St, [ModelP, OptimizerP, POINTER(c_uint64)]),
    # growth
    "tf_model_grow": (St, [ModelP, OptimizerP, c_int64, c_int64, c_int64, POINTER(GrowParams)]),
    # optimizer
    "tf_optimizer_params_init": (None, [POINTER(OptimizerParams), c_size_t]),
    "tf_config_optimizer_params": (St, [ConfigP, POINTER(OptimizerParams)]),
    "tf_optimizer_create": (St, [ModelP, POINTER(OptimizerParams), POINTER(OptimizerP)]),
    "tf_optimizer_free": (None, [OptimizerP]),
    "tf_optimizer_errmsg": (c_char_p, [OptimizerP]),
    "tf_optimizer_step": (St, [OptimizerP, Pf]),
    "tf_optimizer_lr_at": (c_double, [OptimizerP, c_int64]),
    "tf_schedule_lr": (c_double, [POINTER(OptimizerParams), c_int64]),
    "tf_optimizer_step_count": (c_int64, [OptimizerP]),
    "tf_optimizer_get_params": (St, [OptimizerP, POINTER(OptimizerParams)]),
    "tf_optimizer_set_params": (St, [OptimizerP, POINTER(OptimizerParams)]),
    "tf_optimizer_get_moment": (St, [OptimizerP, c_char_p, c_int, Pf, c_size_t]),
    # datasets
    "tf_dataset_open": (St, [c_char_p, Enum, c_int64, c_double, POINTER(DatasetP)]),
    "tf_dataset_from_tokens": (St, [Pi32, c_int64, c_int64, c_double, POINTER(DatasetP)]),
    "tf_dataset_free": (None, [DatasetP]),
    "tf_dataset_errmsg": (c_char_p, [DatasetP]),
    "tf_dataset_num_tokens": (c_int64, [DatasetP, Enum]),
    "tf_dataset_sample": (St, [DatasetP, Enum, c_uint64, c_int64, c_int, c_int, Pi32, Pi32]),
    "tf_dataset_num_batches": (c_int64, [DatasetP, Enum, c_int, c_int]),
    "tf_dataset_batch": (St, [DatasetP, Enum, c_int64, c_int, c_int, Pi32, Pi32]),
    "tf_data_format_name": (c_char_p, [Enum]),
    "tf_dataset_params_init": (None, [POINTER(DatasetParams), c_size_t]),
    "tf_dataset_open_files": (St, [POINTER(c_char_p), c_size_t, POINTER(c_char_p), c_size_t,
                                   POINTER(DatasetParams), POINTER(DatasetP)]),
    "tf_dataset_open_glob": (St, [c_char_p, c_char_p, POINTER(DatasetParams),
                                  POINTER(DatasetP)]),
    "tf_dataset_num_sources": (c_int64, [DatasetP, Enum]),
    "tf_dataset_source": (St, [DatasetP, Enum, c_int64, POINTER(DataSource)]),
    # checkpoints
    "tf_model_save": (St, [ModelP, OptimizerP, c_char_p]),
    "tf_model_export": (St, [ModelP, c_char_p, Enum]),
    "tf_model_load": (St, [ModelP, OptimizerP, c_char_p]),
    "tf_model_open": (St, [c_char_p, POINTER(ModelP)]),
    "tf_model_open_config": (St, [c_char_p, ConfigP, POINTER(ModelP)]),
    "tf_inference_params_init": (None, [POINTER(InferenceParams), c_size_t]),
    "tf_model_make_inference": (St, [ModelP, POINTER(InferenceParams)]),
    "tf_model_open_inference": (St, [c_char_p, ConfigP, POINTER(InferenceParams),
                                     POINTER(ModelP)]),
    "tf_model_weights_dtype": (Enum, [ModelP]),
    "tf_model_load_grown": (St, [ModelP, c_char_p, POINTER(GrowParams)]),
    "tf_checkpoint_info": (St, [c_char_p, POINTER(ModelParams), POINTER(c_int64)]),
    # inference
    "tf_decoder_create": (St, [ModelP, c_int, POINTER(DecoderP)]),
    "tf_decoder_free": (None, [DecoderP]),
    "tf_decoder_errmsg": (c_char_p, [DecoderP]),
    "tf_decoder_reset": (St, [DecoderP]),
    "tf_decoder_position": (c_int64, [DecoderP]),
    "tf_decoder_prefill": (St, [DecoderP, c_int, Pi32, Pf]),
    "tf_decoder_step": (St, [DecoderP, Pi32, Pf]),
    "tf_decoder_score": (St, [DecoderP, c_int, Pi32, Pi32, POINTER(c_double)]),
    "tf_decoder_logits": (Pf, [DecoderP]),
    "tf_sampler_params_init": (None, [POINTER(SamplerParams), c_size_t]),
    "tf_sampler_params_official": (St, [POINTER(SamplerParams), c_double, c_int32, c_double]),
    "tf_sample": (St, [Pf, c_int64, POINTER(SamplerParams), POINTER(c_uint64), Pi32]),
    "tf_decoder_generate": (St, [DecoderP, c_int, POINTER(SamplerParams), Pi32, c_int, Pi32,
                                 POINTER(c_int), TokenCallback, c_void_p]),
    "tf_bytes_to_tokens": (St, [c_char_p, c_size_t, Pi32, c_size_t, POINTER(c_size_t)]),
    "tf_tokens_to_bytes": (St, [Pi32, c_size_t, POINTER(c_char), c_size_t]),
    # BPE tokenizer
    "tf_tokenizer_load": (St, [c_char_p, POINTER(TokenizerP)]),
    "tf_tokenizer_parse": (St, [c_char_p, c_size_t, POINTER(TokenizerP)]),
    "tf_tokenizer_free": (None, [TokenizerP]),
    "tf_tokenizer_errmsg": (c_char_p, [TokenizerP]),
    "tf_tokenizer_vocab_size": (c_int64, [TokenizerP]),
    "tf_tokenizer_encode": (St, [TokenizerP, c_char_p, c_size_t, Pi32, c_size_t,
                                 POINTER(c_size_t)]),
    "tf_tokenizer_decode": (St, [TokenizerP, Pi32, c_size_t, POINTER(c_char), c_size_t,
                                 POINTER(c_size_t)]),
    "tf_tokenizer_token_to_id": (St, [TokenizerP, c_char_p, POINTER(c_int32)]),
    "tf_tokenizer_id_to_token": (c_char_p, [TokenizerP, c_int32]),
    "tf_tokenizer_is_special": (c_int, [TokenizerP, c_int32]),
    "tf_tokenizer_num_added": (c_int32, [TokenizerP]),
    "tf_tokenizer_added_id": (c_int32, [TokenizerP, c_int32]),
    # image datasets
    "tf_image_aug_params_init": (None, [POINTER(ImageAugParams), c_size_t]),
    "tf_image_dataset_open": (St, [c_char_p, c_char_p, POINTER(ImageDatasetP)]),
    "tf_image_dataset_from_memory": (St, [Pu8, Pi32, c_int64, c_int32, c_int32,
                                          POINTER(ImageDatasetP)]),
    "tf_image_dataset_free": (None, [ImageDatasetP]),
    "tf_image_dataset_errmsg": (c_char_p, [ImageDatasetP]),
    "tf_image_dataset_size": (c_int64, [ImageDatasetP]),
    "tf_image_dataset_height": (c_int32, [ImageDatasetP]),
    "tf_image_dataset_width": (c_int32, [ImageDatasetP]),
    "tf_image_dataset_num_classes": (c_int32, [ImageDatasetP]),
    "tf_image_dataset_epoch_batches": (c_int64, [ImageDatasetP, c_int]),
    "tf_image_dataset_train_batch": (St, [ImageDatasetP, POINTER(ImageAugParams), c_uint64,
                                          c_int64, c_int, Pf, Pi32]),
    "tf_image_dataset_eval_batch": (St, [ImageDatasetP, POINTER(ImageAugParams), c_int64, c_int,
                                         Pf, Pi32]),
}

#: Header functions the loaded library does not export.
missing_symbols = []


def _missing(name):
    def stub(*args, **kwargs):
        raise NotImplementedError("%s is not exported by %s (a library older than the bindings?)"
                                  % (name, library_path))
    stub.__name__ = name
    return stub


class _Functions(object):
    """Attribute access to the bound C functions (``F.tf_model_create``)."""

    def __getattr__(self, name: str) -> Any:
        # only reached for names not bound below: says to type checkers that
        # the bound functions are set dynamically
        raise AttributeError("%s is not a function of include/tokenformer.h" % name)


F = _Functions()
for _name, (_res, _args) in PROTOTYPES.items():
    try:
        _fn = getattr(lib, _name)
    except AttributeError:
        missing_symbols.append(_name)
        setattr(F, _name, _missing(_name))
        continue
    _fn.restype = _res
    _fn.argtypes = _args
    setattr(F, _name, _fn)


def have(name: str) -> bool:
    """True if the loaded library exports the C function ``name``."""
    return name not in missing_symbols


# ---- import-time checks -------------------------------------------------------

if F.tf_version_number() // 1000000 != ABI_MAJOR:
    raise ImportError("tokenformer: %s is version %s; these bindings need major version %d"
                      % (library_path, F.tf_version_string().decode(), ABI_MAJOR))


def _check_struct(fn_name, mirror):
    """The library must know every field of the mirror: its init function
    reports the size it filled (at most its own struct's size)."""
    if not have(fn_name):
        return
    probe = mirror.__new__(mirror)
    ctypes.memset(ctypes.addressof(probe), 0, ctypes.sizeof(mirror))
    # called through a void* prototype so that any mirror type can be probed
    init = ctypes.cast(getattr(lib, fn_name), ctypes.CFUNCTYPE(None, ctypes.c_void_p, c_size_t))
    init(ctypes.addressof(probe), ctypes.sizeof(mirror))
    if probe.struct_size != ctypes.sizeof(mirror):
        raise ImportError(
            "tokenformer: %s() of %s fills %d bytes but the bindings' %s mirror has %d: the "
            "library (%s) is older than these bindings; use bindings of the library's version"
            % (fn_name, library_path, probe.struct_size, mirror.__name__, ctypes.sizeof(mirror),
               F.tf_version_string().decode()))


for _fn_name, _mirror in (("tf_pattention_params_init", PattentionParams),
                          ("tf_grow_params_init", GrowParams),
                          ("tf_model_params_init", ModelParams),
                          ("tf_vision_params_init", VisionParams),
                          ("tf_optimizer_params_init", OptimizerParams),
                          ("tf_sampler_params_init", SamplerParams),
                          ("tf_dataset_params_init", DatasetParams),
                          ("tf_image_aug_params_init", ImageAugParams),
                          ("tf_inference_params_init", InferenceParams)):
    _check_struct(_fn_name, _mirror)


# ---- errors -----------------------------------------------------------------------


def _dec(b):
    return b.decode("utf-8", "replace") if b else ""


def last_error() -> str:
    """``tf_last_error()``: this thread's most recent failure message."""
    return _dec(F.tf_last_error())


def status_name(status: int) -> str:
    """``tf_status_name()``: e.g. ``"TF_ERR_SHAPE"``."""
    return _dec(F.tf_status_name(int(status)))


def error(status, errmsg_fn=None, handle=None):
    """The exception for a failed call.  The message is the handle's
    (``*_errmsg``) when it carries this failure, else ``tf_last_error()``
    (the handle's buffer keeps an older message when a call records its
    failure elsewhere, e.g. on a NULL or a second handle)."""
    last = last_error()
    msg = ""
    if errmsg_fn is not None and handle:
        msg = _dec(errmsg_fn(handle))
        if last and msg != last:
            msg = last
    if not msg:
        msg = last or status_name(status)
    return errors.exception_for_status(status)(status, msg)


def check(status, errmsg_fn=None, handle=None):
    """Raises the exception for a non-zero status; returns None otherwise."""
    if status != 0:
        raise error(status, errmsg_fn, handle)


# ---- arrays -----------------------------------------------------------------------


_I32 = np.iinfo(np.int32)
_F32_MAX = float(np.finfo(np.float32).max)  # for messages


def as_f32(a, name="array"):
    """``a`` as a C-contiguous float32 ndarray: the array itself when it
    already is one (no copy), else a converted copy.  Refuses complex
    values (ArgumentTypeError) and finite values that float32 cannot hold
    (ArgumentOverflowError: float64 1e300 would become inf)."""
    src = np.asarray(a)
    if src.dtype.kind == "c":
        raise errors.ArgumentTypeError("%s: complex values (%s) cannot be float32"
                                       % (name, src.dtype))
    with np.errstate(over="ignore"):  # checked below
        arr = np.ascontiguousarray(src, dtype=np.float32)
    if src.dtype.kind == "f" and src.dtype.itemsize > 4 and src.size:
        bad = np.isinf(arr) & np.isfinite(src)  # became infinite in the conversion
        if bad.any():
            i = int(np.flatnonzero(bad.reshape(-1))[0])
            raise errors.ArgumentOverflowError(
                "%s: value %r at flat index %d is beyond float32's range (+-%g)"
                % (name, src.reshape(-1)[i].item(), i, _F32_MAX))
    return arr


def as_f32_shaped(a, shape, name="array"):
    """:func:`as_f32` for a copy into a tensor of ``shape``: the array must
    have that shape, or be 1-D of that size (read in C order).  An array of
    the right size but another shape (a transpose) is a ShapeError: copying
    it by element count would scramble it.  A wrong size is left to the
    library, whose message names both sizes."""
    arr = as_f32(a, name)
    shape = tuple(int(d) for d in shape)
    if arr.size == int(np.prod(shape, dtype=np.int64)) and arr.ndim != 1 \
            and tuple(arr.shape) != shape:
        raise errors.ShapeError(2, "%s has shape %s, the tensor is %s (transpose or reshape "
                                   "it explicitly)" % (name, tuple(arr.shape), shape))
    return arr


def as_i32(a, name="array"):
    """``a`` as a C-contiguous int32 ndarray (no copy when it already is).
    Token ids must be integers that fit int32: bool and float arrays are an
    ArgumentTypeError, larger ids (int64, uint32, Python ints) an
    ArgumentOverflowError, never wrapped."""
    if isinstance(a, (bytes, bytearray, memoryview)):
        a = np.frombuffer(bytes(a), dtype=np.uint8)
    arr = np.asarray(a)
    if arr.dtype.kind == "O":  # e.g. Python ints beyond int64
        try:
            arr = np.asarray(a, dtype=np.int64)
        except OverflowError:
            raise errors.ArgumentOverflowError("%s: a token id does not fit int32" % name) \
                from None
        except (TypeError, ValueError):
            raise errors.ArgumentTypeError("%s: token ids must be integers" % name) from None
    if arr.dtype != np.int32 and arr.size:
        if arr.dtype.kind == "b":
            raise errors.ArgumentTypeError("%s: token ids must be integers, not bool" % name)
        if arr.dtype.kind not in "iu":
            raise errors.ArgumentTypeError("%s: token ids must be integers, not %s"
                                           % (name, arr.dtype))
        flat = arr.reshape(-1)
        bad = (flat > _I32.max) | (flat < _I32.min) if arr.dtype.kind == "i" else flat > _I32.max
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise errors.ArgumentOverflowError(
                "%s: token id %d at flat index %d does not fit int32" % (name, int(flat[i]), i))
    return np.ascontiguousarray(arr, dtype=np.int32)


def out_array(out, shape, dtype, name="out"):
    """A fresh ``np.empty(shape, dtype)`` or the caller's ``out``, checked to
    be a writable C-contiguous array of that dtype and size (it is filled
    in place, and returned reshaped view-only when its shape differs)."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise errors.ArgumentError(1, "%s must be a numpy.ndarray" % name)
    if out.dtype != dtype:
        raise errors.ArgumentError(1, "%s has dtype %s, not %s" % (name, out.dtype,
                                                                  np.dtype(dtype).name))
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise errors.ArgumentError(1, "%s must be C-contiguous and writable" % name)
    want = int(np.prod(shape, dtype=np.int64))
    if out.size != want:
        raise errors.ShapeError(2, "%s has %d elements, %s needs %d" % (name, out.size,
                                                                       tuple(shape), want))
    return out


def fptr(a):
    """``float *`` to a float32 ndarray's data (None -> NULL)."""
    return None if a is None else a.ctypes.data_as(Pf)


def iptr(a):
    """``int32_t *`` to an int32 ndarray's data (None -> NULL)."""
    return None if a is None else a.ctypes.data_as(Pi32)


def _no_nul(b: bytes, what: str, value: Any) -> bytes:
    if b"\0" in b:
        raise errors.ArgumentError(1, "%s %r contains a NUL byte (C would cut it short)"
                                   % (what, value))
    return b


def path_arg(path: PathLike) -> bytes:
    """A filesystem path (str, bytes or os.PathLike) as bytes for C; a NUL
    byte in it is an ArgumentError (a ValueError, as for ``open()``)."""
    return _no_nul(os.fsencode(path), "path", path)


def name_arg(name):
    """A str/bytes name as UTF-8 bytes for C; ArgumentTypeError for any
    other type, ArgumentError for a NUL byte in it."""
    if isinstance(name, str):
        b = name.encode("utf-8")
    elif isinstance(name, (bytes, bytearray)):
        b = bytes(name)
    else:
        raise errors.ArgumentTypeError("a name must be a str or bytes, not %s"
                                       % type(name).__name__)
    return _no_nul(b, "name", name)


# ---- handles ------------------------------------------------------------------------


_H = TypeVar("_H", bound="Handle")


class Handle(object):
    """Base of the handle classes: owns (or borrows) one C pointer.

    ``close()`` frees an owned handle exactly once (later calls do nothing);
    ``__del__`` closes; ``with obj:`` closes at the end of the block.  A
    closed handle raises :class:`tokenformer.ClosedError` on use.
    """

    _free_fn: Optional[str] = None    # name of the C *_free function
    _errmsg_fn: Optional[str] = None  # name of the C *_errmsg function

    def __init__(self, ptr, owner=None, borrowed=False, keepalive=None):
        self._ptr = ptr if ptr else None
        self._owner = owner          # a borrowed handle's owner
        self._borrowed = borrowed
        self._keepalive = keepalive  # an object this handle points into

    @property
    def closed(self) -> bool:
        """True once closed (or once the owner of a borrowed handle closed)."""
        if self._ptr is None:
            return True
        return self._owner is not None and self._owner.closed

    def _h(self):
        """The live C pointer; ClosedError if closed."""
        ptr = self._ptr
        if ptr is None:
            raise errors.ClosedError("%s is closed%s" % (type(self).__name__,
                                                          getattr(self, "_closed_why", "")))
        owner = self._owner
        if owner is not None and owner.closed:
            raise errors.ClosedError("%s belongs to a %s that is closed" % (
                type(self).__name__, type(owner).__name__))
        return ptr

    def _check(self, status):
        if status != 0:
            raise error(status, getattr(F, self._errmsg_fn) if self._errmsg_fn else None,
                        self._ptr)

    def _release(self):
        """Hook run by close() before the pointer is freed (a model closes
        its dependents here)."""

    def close(self) -> None:
        """Frees the handle (owned) or detaches it (borrowed).  Idempotent.

        Order: the pointer is taken first (so re-entrant or repeated calls
        see a closed handle and free nothing), dependents are closed, the
        pointer is freed, and only then are the references that kept other
        objects alive (owner, model) dropped -- so a model is freed after
        the optimizers and decoders that point into it."""
        ptr = getattr(self, "_ptr", None)
        if ptr is None:
            return
        self._ptr = None
        try:
            self._release()
        finally:
            if not getattr(self, "_borrowed", True) and self._free_fn is not None:
                free = getattr(F, self._free_fn, None)
                if free is not None:
                    free(ptr)
            self._owner = None
            self._keepalive = None

    def __enter__(self: _H) -> _H:
        self._h()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
