"""The language model (``tf_model``): forward/backward, named tensors,
borrowed Pattention sets, growth and checkpoints."""

from __future__ import annotations

import ctypes
import weakref
from typing import (TYPE_CHECKING, Any, Callable, Dict, List, Mapping, NamedTuple, Optional,
                    Tuple, Union)

import numpy as np
from numpy.typing import ArrayLike

from . import _lib, errors
from ._lib import F, PathLike
from .enums import DType, DTypeLike, NormLike, ScalePolicyLike, SetKind, SetKindLike
from .params import GrowParams, InferenceParams, ModelParams, VisionParams, given_fields
from .pattention import Pattention, grow_params

if TYPE_CHECKING:
    from .config import Config
    from .optimizer import Optimizer

__all__ = ["Model", "ForwardResult", "CheckpointInfo", "checkpoint_info"]

#: What :meth:`Model.forward` returns: ``logits`` [B, T, V] (None if not
#: requested) and ``loss`` (a float, None without targets).
class ForwardResult(NamedTuple):
    logits: Optional[np.ndarray]
    loss: Optional[float]

class CheckpointInfo(NamedTuple):
    """What :func:`checkpoint_info` returns: the checkpoint's ``params``
    (:class:`ModelParams`, slot numbers included) and ``optimizer_step``
    (None if the file has no optimizer state)."""
    params: ModelParams
    optimizer_step: Optional[int]


def checkpoint_info(path: PathLike) -> CheckpointInfo:
    """``tf_checkpoint_info()``: a checkpoint's configuration and optimizer
    step count, without building a model."""
    params = ModelParams()
    step = ctypes.c_int64(-1)
    _lib.check(F.tf_checkpoint_info(_lib.path_arg(path), ctypes.byref(params),
                                    ctypes.byref(step)))
    return CheckpointInfo(params, None if step.value < 0 else int(step.value))


class Model(_lib.Handle):
    """A TokenFormer language model.

    ``Model(hidden_size=128, num_layers=4)`` creates one from the library's
    default params with those fields (None keeps a default; or pass
    ``params=ModelParams(...)``, which the fields then override);
    ``Model.from_config(cfg_or_path)`` from a YAML config;
    ``Model.open(path)`` from a checkpoint.

    Ownership: the model owns its Pattention sets (:meth:`pattention` hands
    out borrowed views that keep this object alive).  Optimizers and
    decoders keep a reference to their model, so it outlives them; closing
    the model explicitly first closes them and detaches the borrowed sets
    (their later use raises ClosedError instead of touching freed memory).
    """

    _free_fn = "tf_model_free"
    _errmsg_fn = "tf_model_errmsg"

    def __init__(self, params: Optional[ModelParams] = None, *,
                 num_layers: Optional[int] = None, hidden_size: Optional[int] = None,
                 num_attention_heads: Optional[int] = None, qkv_slot_num: Optional[int] = None,
                 proj_slot_num: Optional[int] = None, ffn_slot_num: Optional[int] = None,
                 rotary_pct: Optional[float] = None, rotary_emb_base: Optional[float] = None,
                 norm: Optional[NormLike] = None, vocab_size: Optional[int] = None,
                 seq_length: Optional[int] = None, layernorm_epsilon: Optional[float] = None,
                 init_method_std: Optional[float] = None, seed: Optional[int] = None,
                 scale_policy: Optional[ScalePolicyLike] = None) -> None:
        fields = given_fields(ModelParams, locals())
        if params is None:
            params = ModelParams(**fields)
        elif not isinstance(params, ModelParams):
            raise TypeError("params must be a ModelParams, not %s" % type(params).__name__)
        elif fields:
            params = params.copy().update(**fields)
        out = _lib.ModelP()
        _lib.check(F.tf_model_create(ctypes.byref(params), ctypes.byref(out)))
        self._init_handle(out)

    def _init_handle(self, ptr):
        _lib.Handle.__init__(self, ptr)
        self._dependents = weakref.WeakSet()
        self._grad_ready = None          # the installed C callback (kept alive)
        self._grad_ready_failures = []   # exceptions raised in it, re-raised by backward

    @classmethod
    def _wrap(cls, ptr):
        self = cls.__new__(cls)
        self._init_handle(ptr)
        return self

    @classmethod
    def vision(cls, params: Optional[VisionParams] = None, *,
               image_size: Optional[int] = None, channels: Optional[int] = None,
               patch_size: Optional[int] = None, num_classes: Optional[int] = None,
               patch_slot_num: Optional[int] = None, head_slot_num: Optional[int] = None,
               num_layers: Optional[int] = None, hidden_size: Optional[int] = None,
               num_attention_heads: Optional[int] = None, qkv_slot_num: Optional[int] = None,
               proj_slot_num: Optional[int] = None, ffn_slot_num: Optional[int] = None,
               norm: Optional[NormLike] = None, layernorm_epsilon: Optional[float] = None,
               init_method_std: Optional[float] = None, seed: Optional[int] = None,
               scale_policy: Optional[ScalePolicyLike] = None) -> "Model":
        """``tf_model_create_vision()``: a fresh image classifier (the
        fields override ``params``, or the library's defaults)."""
        fields = given_fields(VisionParams, locals())
        if params is None:
            params = VisionParams(**fields)
        elif not isinstance(params, VisionParams):
            raise TypeError("params must be a VisionParams, not %s" % type(params).__name__)
        elif fields:
            params = params.copy().update(**fields)
        out = _lib.ModelP()
        _lib.check(F.tf_model_create_vision(ctypes.byref(params), ctypes.byref(out)))
        return cls._wrap(out)

    @property
    def is_vision(self) -> bool:
        """Whether this is an image classifier (``tf_model_is_vision``)."""
        return bool(F.tf_model_is_vision(self._h()))

    @property
    def vision_params(self) -> VisionParams:
        """``tf_model_get_vision_params()`` (StateError on a language model)."""
        p = VisionParams()
        self._check(F.tf_model_get_vision_params(self._h(), ctypes.byref(p)))
        return p

    def _pixels(self, pixels: ArrayLike) -> np.ndarray:
        vp = self.vision_params
        shape = (vp.image_size, vp.image_size) + ((vp.channels,) if vp.channels > 1 else ())
        px = _lib.as_f32(pixels, "pixels")
        if px.shape == shape:
            px = px.reshape((1,) + shape)
        if px.shape[1:] != shape or px.shape[0] < 1:
            raise errors.ShapeError(2, "pixels has shape %s; the model needs [B, %s]"
                                    % (tuple(px.shape), ", ".join(map(str, shape))))
        return px

    def forward_images(self, pixels: ArrayLike, labels: Optional[ArrayLike] = None,
                       logits: bool = True) -> ForwardResult:
        """``tf_model_forward_images()`` on ``pixels`` [B, H, W] (or
        [B, H, W, C]; one image without B).  Returns ``ForwardResult(logits
        [B, K] or None, loss or None)``; with ``labels`` [B],
        :meth:`backward` may follow."""
        h = self._h()
        px = self._pixels(pixels)
        B = px.shape[0]
        lab = None
        if labels is not None:
            lab = _lib.as_i32(labels, "labels").reshape(-1)
            if lab.shape != (B,):
                raise errors.ShapeError(2, "labels has %d entries for %d images" % (lab.size, B))
        lg = _lib.out_array(None, (B, self.vision_params.num_classes), np.float32) \
            if logits else None
        loss = ctypes.c_float()
        self._check(F.tf_model_forward_images(h, B, _lib.fptr(px), _lib.iptr(lab),
                                              _lib.fptr(lg),
                                              ctypes.byref(loss) if lab is not None else None))
        return ForwardResult(lg, float(loss.value) if lab is not None else None)

    def predict(self, pixels: ArrayLike) -> np.ndarray:
        """``tf_model_predict()``: the class (int32) of each image."""
        h = self._h()
        px = self._pixels(pixels)
        out = np.empty(px.shape[0], np.int32)
        self._check(F.tf_model_predict(h, px.shape[0], _lib.fptr(px), _lib.iptr(out)))
        return out

    @classmethod
    def from_config(cls, config: Union["Config", PathLike], **fields: Any) -> "Model":
        """A fresh model from a :class:`Config` or a YAML path (``fields``,
        those of :class:`ModelParams`, override the config's values)."""
        from .config import Config
        if isinstance(config, Config):
            params = config.model_params()
        else:
            with Config.load(config) as cfg:
                params = cfg.model_params()
        return cls(params, **fields)

    @classmethod
    def open(cls, path: PathLike,
             config: Optional[Union["Config", PathLike]] = None, *,
             weights: Optional[DTypeLike] = None) -> "Model":
        """``tf_model_open_config()``: a model to run from a checkpoint
        (F32, F16 or BF16 tensors), without an initialisation or gradients
        (training it allocates them).  The configuration is the file's own;
        ``config`` (a :class:`Config` or a YAML path, e.g. the official
        ``150M_eval.yml``) is checked against it, or is the configuration
        of a file that has none (tensors under the official names only).
        ConfigError names a key that disagrees; FormatError a tensor, as
        the file calls it.  ``weights="bf16"``: ``tf_model_open_inference()``,
        an inference model with bfloat16 weights, each tensor narrowed as it
        is read (see :meth:`make_inference`)."""
        from .config import Config
        out = _lib.ModelP()
        ip = None if weights is None else InferenceParams(weights=weights)

        def open_with(cfg_h):
            if ip is None:
                _lib.check(F.tf_model_open_config(_lib.path_arg(path), cfg_h, ctypes.byref(out)))
            else:
                _lib.check(F.tf_model_open_inference(_lib.path_arg(path), cfg_h,
                                                     ctypes.byref(ip), ctypes.byref(out)))
        if config is None:
            open_with(None)
        elif isinstance(config, Config):
            open_with(config._h())
        else:
            with Config.load(config) as cfg:
                open_with(cfg._h())
        return cls._wrap(out)

    def make_inference(self, params: Optional[InferenceParams] = None, *,
                       weights: Optional[DTypeLike] = None) -> None:
        """``tf_model_make_inference()``: with ``weights="bf16"`` the model
        becomes an inference model with bfloat16 weights, narrowed in place
        (half the weights' memory; gradients freed).  Forwards, decoders and
        reading tensors (widened) keep working; training, growing, saving
        or setting weights raise StateError.  There is no way back to f32."""
        ip = params.copy() if params is not None else InferenceParams()
        if weights is not None:
            ip.weights = weights
        self._check(F.tf_model_make_inference(self._h(), ctypes.byref(ip)))

    @property
    def weights_dtype(self) -> DType:
        """``tf_model_weights_dtype()``: DType.BF16 for an inference model in
        bfloat16, else DType.F32."""
        return DType(F.tf_model_weights_dtype(self._h()))

    def _add_dependent(self, obj):
        self._dependents.add(obj)

    def _release(self):
        for dep in list(getattr(self, "_dependents", ())):
            dep._closed_why = " (its Model was closed)"
            dep.close()

    def errmsg(self) -> str:
        """``tf_model_errmsg()``: the last error on this model."""
        return _lib._dec(F.tf_model_errmsg(self._h()))

    # -- configuration ---------------------------------------------------
    @property
    def params(self) -> ModelParams:
        """``tf_model_get_params()``: the current :class:`ModelParams`
        (slot numbers after any growth).  A copy: changing it does nothing."""
        h = self._h()
        p = ModelParams()
        self._check(F.tf_model_get_params(h, ctypes.byref(p)))
        return p

    @property
    def num_params(self) -> int:
        """Number of trainable scalars."""
        return int(F.tf_model_num_params(self._h()))

    @property
    def vocab_size(self) -> int:
        """V."""
        return int(self.params.vocab_size)

    @property
    def seq_length(self) -> int:
        """The longest T."""
        return int(self.params.seq_length)

    @property
    def num_layers(self) -> int:
        """L."""
        return int(self.params.num_layers)

    # -- Pattention sets -------------------------------------------------
    def pattention(self, layer: int, kind: SetKindLike) -> Pattention:
        """Layer ``layer``'s Pattention set of ``kind`` (a :class:`SetKind`,
        int or name: "query", "key", "value", "proj", "ffn"/"mlp"), borrowed
        from the model.  RangeError for a bad layer."""
        h = self._h()
        kind = SetKind.coerce(kind)
        ptr = F.tf_model_pattention(h, int(layer), int(kind))
        if not ptr:
            raise errors.RangeError(9, "model has no Pattention set (layer %r, %s); layers are "
                                    "0..%d" % (layer, kind.name.lower(), self.num_layers - 1))
        s = Pattention._borrowed_from(ptr, self)
        self._add_dependent(s)
        return s

    # -- named tensors ---------------------------------------------------
    def tensor_names(self) -> List[str]:
        """The SPEC names of every parameter tensor, in canonical order."""
        h = self._h()
        return [_lib._dec(F.tf_model_tensor_name(h, i)) for i in range(F.tf_model_num_tensors(h))]

    @property
    def num_tensors(self) -> int:
        """Number of named tensors."""
        return int(F.tf_model_num_tensors(self._h()))

    def tensor_shape(self, name: str) -> Tuple[int, ...]:
        """The shape of a named tensor as a tuple (NotFoundError if none)."""
        h = self._h()
        shape = (ctypes.c_int64 * 2)()
        ndim = ctypes.c_int()
        self._check(F.tf_model_tensor_shape(h, _lib.name_arg(name), shape, ctypes.byref(ndim)))
        return tuple(int(shape[i]) for i in range(ndim.value))

    def get_tensor(self, name: str, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Copy of a named tensor (into ``out`` if given)."""
        shape = self.tensor_shape(name)
        arr = _lib.out_array(out, shape, np.float32)
        self._check(F.tf_model_get_tensor(self._h(), _lib.name_arg(name), _lib.fptr(arr),
                                          arr.size))
        return arr

    def set_tensor(self, name: str, value: ArrayLike) -> None:
        """Copies ``value`` into a named tensor.  It must have the tensor's
        shape (or be 1-D of its size, read in C order): ShapeError otherwise,
        so that a transposed array is not copied by element count.  Used in
        place if C-contiguous float32, else converted (a copy);
        ArgumentOverflowError for finite values float32 cannot hold."""
        h = self._h()
        arr = _lib.as_f32_shaped(value, self.tensor_shape(name), name)
        self._check(F.tf_model_set_tensor(h, _lib.name_arg(name), _lib.fptr(arr), arr.size))

    def get_grad(self, name: str, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Copy of a named tensor's accumulated gradient."""
        shape = self.tensor_shape(name)
        arr = _lib.out_array(out, shape, np.float32)
        self._check(F.tf_model_get_grad(self._h(), _lib.name_arg(name), _lib.fptr(arr),
                                        arr.size))
        return arr

    def set_grad(self, name: str, value: ArrayLike) -> None:
        """Replaces a named tensor's accumulated gradient with ``value``
        (``tf_model_set_grad``), e.g. to drive :meth:`Optimizer.step` with
        gradients computed elsewhere.  Shapes are checked as by
        :meth:`set_tensor`."""
        h = self._h()
        arr = _lib.as_f32_shaped(value, self.tensor_shape(name), name)
        self._check(F.tf_model_set_grad(h, _lib.name_arg(name), _lib.fptr(arr), arr.size))

    def state_dict(self) -> Dict[str, np.ndarray]:
        """``{name: copy of the tensor}`` for every parameter."""
        return {n: self.get_tensor(n) for n in self.tensor_names()}

    def load_state_dict(self, tensors: Mapping[str, ArrayLike]) -> None:
        """Sets every tensor of a ``{name: array}`` mapping."""
        for n, v in tensors.items():
            self.set_tensor(n, v)

    def grads(self) -> Dict[str, np.ndarray]:
        """``{name: copy of the gradient}`` for every parameter."""
        return {n: self.get_grad(n) for n in self.tensor_names()}

    # -- compute ---------------------------------------------------------
    def forward(self, tokens: ArrayLike, targets: Optional[ArrayLike] = None,
                logits: bool = True, out: Optional[np.ndarray] = None) -> ForwardResult:
        """``tf_model_forward()`` on ``tokens`` [B, T] (int32 ids; a 1-D array
        is one sequence; other integer arrays are converted, a copy).

        Returns ``ForwardResult(logits, loss)``: logits [B, T, V] unless
        ``logits`` is false (into ``out`` if given); loss (float) when
        ``targets`` [B, T] is given -- then :meth:`backward` may follow."""
        h = self._h()
        tok = _lib.as_i32(tokens, "tokens")
        if tok.ndim == 1:
            tok = tok.reshape(1, -1)
        if tok.ndim != 2 or tok.size == 0:
            raise errors.ShapeError(2, "tokens has shape %s; the model needs [B, T]"
                                    % (tuple(tok.shape),))
        B, T = tok.shape
        tgt = None
        if targets is not None:
            tgt = _lib.as_i32(targets, "targets")
            if tgt.ndim == 1:
                tgt = tgt.reshape(1, -1)
            if tgt.shape != tok.shape:
                raise errors.ShapeError(2, "targets has shape %s, tokens %s"
                                        % (tuple(tgt.shape), tuple(tok.shape)))
        lg = None
        if logits or out is not None:
            lg = _lib.out_array(out, (B, T, self.vocab_size), np.float32)
        loss = ctypes.c_float()
        self._check(F.tf_model_forward(h, B, T, _lib.iptr(tok), _lib.iptr(tgt), _lib.fptr(lg),
                                       ctypes.byref(loss) if tgt is not None else None))
        return ForwardResult(lg, float(loss.value) if tgt is not None else None)

    def logits(self, tokens: ArrayLike, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Just the logits [B, T, V] of ``tokens``."""
        lg = self.forward(tokens, None, True, out).logits
        assert lg is not None
        return lg

    def loss(self, tokens: ArrayLike, targets: ArrayLike) -> float:
        """Just the mean cross-entropy (the logits are not copied out)."""
        loss = self.forward(tokens, targets, logits=False).loss
        assert loss is not None
        return loss

    def backward(self) -> None:
        """``tf_model_backward()``: gradients of the last forward's loss,
        accumulated (StateError without a forward with targets).  An
        exception raised by the :meth:`set_grad_ready_callback` callback is
        re-raised here, after the pass (later ranges are not reported)."""
        h = self._h()
        del self._grad_ready_failures[:]
        st = F.tf_model_backward(h)
        if self._grad_ready_failures:
            e = self._grad_ready_failures[0]
            del self._grad_ready_failures[:]
            raise e
        self._check(st)

    def zero_grad(self) -> None:
        """Zeroes every accumulated gradient."""
        h = self._h()
        self._check(F.tf_model_zero_grad(h))

    @property
    def label_smoothing(self) -> float:
        """eps of the training loss's label smoothing
        (``tf_model_set_label_smoothing``): a forward with targets or labels
        takes the cross-entropy against (1 - eps) onehot + eps / V; 0 (the
        default) is the plain loss.  Not saved in checkpoints."""
        return float(F.tf_model_get_label_smoothing(self._h()))

    @label_smoothing.setter
    def label_smoothing(self, eps: float) -> None:
        self._check(F.tf_model_set_label_smoothing(self._h(), float(eps)))

    # -- data-parallel training --------------------------------------------
    def grad_buffer(self) -> np.ndarray:
        """``tf_model_grad_buffer()``: every gradient of the model as one
        writable float32 array [num_params], a view of the model's own
        buffer (no copy), in table order (:meth:`tensor_names`, each tensor
        row-major).  Sum it across processes in place (``comm.Allreduce(
        MPI.IN_PLACE, buf)`` with mpi4py) between :meth:`backward` and
        :meth:`Optimizer.step`, which reads it and zeroes it.  The view keeps
        this object alive, but it is valid only until the model grows (take
        a new one after :meth:`grow`) or is closed."""
        h = self._h()
        data = _lib.Pf()
        count = ctypes.c_size_t()
        self._check(F.tf_model_grad_buffer(h, ctypes.byref(data), ctypes.byref(count)))
        carr = (ctypes.c_float * count.value).from_address(ctypes.addressof(data.contents))
        carr._tf_model = self  # type: ignore[attr-defined]  # the view keeps the model
        return np.frombuffer(carr, dtype=np.float32)

    def set_grad_ready_callback(self, fn: Optional[Callable[[int, int], Any]]) -> None:
        """``tf_model_set_grad_ready_callback()``: during :meth:`backward`,
        ``fn(offset, count)`` is called each time ``grad_buffer()[offset:
        offset + count]`` is final for that pass: the final norm first, then
        the layers from the last to the first, the embedding last; the
        ranges cover the buffer once per pass.  It may start reducing that
        range (``comm.Iallreduce``) so that communication overlaps the rest
        of the pass, but must not call the model.  ``None`` removes it."""
        h = self._h()
        if fn is None:
            self._check(F.tf_model_set_grad_ready_callback(
                h, _lib.GradReadyCallback(), None))  # type: ignore[call-overload]  # NULL
            self._grad_ready = None
            return
        if not callable(fn):
            raise TypeError("fn must be callable or None, not %s" % type(fn).__name__)
        failures = self._grad_ready_failures

        def trampoline(user, grads, offset, count):
            if failures:
                return
            try:
                fn(int(offset), int(count))
            except BaseException as e:  # noqa: B902 -- re-raised by backward
                failures.append(e)
        cb = _lib.GradReadyCallback(trampoline)
        self._check(F.tf_model_set_grad_ready_callback(h, cb, None))
        self._grad_ready = cb

    def checksum(self, optimizer: Optional["Optimizer"] = None) -> int:
        """``tf_model_checksum()``: a 64-bit hash of the parameters, the
        Pattention scales and (with ``optimizer``) the optimizer's state, to
        check that the processes of a data-parallel run hold the same model
        (equal states, equal values)."""
        h = self._h()
        opt = None
        if optimizer is not None:
            if optimizer.model is not self:
                raise errors.ArgumentError(1, "Model.checksum: the optimizer is bound to another "
                                              "model")
            opt = optimizer._h()
        out = ctypes.c_uint64()
        self._check(F.tf_model_checksum(h, opt, ctypes.byref(out)))
        return int(out.value)

    # -- growth ------------------------------------------------------------
    def grow(self, qkv_slot_num: Optional[int] = None, proj_slot_num: Optional[int] = None,
             ffn_slot_num: Optional[int] = None, optimizer: Optional["Optimizer"] = None,
             params: Optional[GrowParams] = None, **fields: Any) -> None:
        """``tf_model_grow()``: grows every layer's sets to the given slot
        numbers (None keeps a kind's current number).  ``optimizer`` (bound
        to this model) has its moments grown too, so training continues.
        New tokens per :class:`GrowParams` (``params`` and/or fields, e.g.
        ``key_init="zero", scale_policy="pinned"``); with an optimizer, its
        training fields apply too (``params=GrowParams.recipe()`` grows by
        the library's recipe: tau ramp, lr restart).  All or nothing."""
        h = self._h()
        cur = self.params
        q = cur.qkv_slot_num if qkv_slot_num is None else int(qkv_slot_num)
        p = cur.proj_slot_num if proj_slot_num is None else int(proj_slot_num)
        f = cur.ffn_slot_num if ffn_slot_num is None else int(ffn_slot_num)
        opt = None
        if optimizer is not None:
            opt = optimizer._h()
            if optimizer.model is not self:
                raise errors.ArgumentError(1, "Model.grow: the optimizer is bound to another model")
        gp = grow_params(params, **fields)
        self._check(F.tf_model_grow(h, opt, q, p, f, None if gp is None else ctypes.byref(gp)))

    # -- checkpoints -------------------------------------------------------
    def save(self, path: PathLike, optimizer: Optional["Optimizer"] = None) -> None:
        """``tf_model_save()``: an atomic safetensors checkpoint (with the
        optimizer's step and moments if ``optimizer`` is given)."""
        h = self._h()
        opt = optimizer._h() if optimizer is not None else None
        self._check(F.tf_model_save(h, opt, _lib.path_arg(path)))

    def export(self, path: PathLike, dtype: DTypeLike = "bf16") -> None:
        """``tf_model_export()``: the model to run elsewhere, every parameter
        in ``dtype`` ("bf16": half the bytes, rounded to nearest even, or
        "f32"), without training state; :meth:`open` reads it back."""
        h = self._h()
        self._check(F.tf_model_export(h, _lib.path_arg(path), int(DType.coerce(dtype))))

    def load(self, path: PathLike, optimizer: Optional["Optimizer"] = None) -> None:
        """``tf_model_load()``: parameters of the same shapes (and the
        optimizer's state if given and present).  Unchanged on error."""
        h = self._h()
        opt = optimizer._h() if optimizer is not None else None
        if optimizer is not None and optimizer.model is not self:
            raise errors.ArgumentError(1, "Model.load: the optimizer is bound to another model")
        self._check(F.tf_model_load(h, opt, _lib.path_arg(path)))

    def load_grown(self, path: PathLike, params: Optional[GrowParams] = None,
                   **fields: Any) -> None:
        """``tf_model_load_grown()``: loads a checkpoint with slot numbers at
        most the model's; the extra rows are initialised per GrowParams."""
        h = self._h()
        gp = grow_params(params, **fields)
        self._check(F.tf_model_load_grown(h, _lib.path_arg(path),
                                          None if gp is None else ctypes.byref(gp)))

    def __repr__(self):
        if self.closed:
            return "<Model closed>"
        p = self.params
        return "<Model L=%d d=%d heads=%d qkv=%d proj=%d ffn=%d V=%d T=%d params=%d>" % (
            p.num_layers, p.hidden_size, p.num_attention_heads, p.qkv_slot_num,
            p.proj_slot_num, p.ffn_slot_num, p.vocab_size, p.seq_length, self.num_params)
