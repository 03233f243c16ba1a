"""Official TokenFormer checkpoints to the library's safetensors.

Reads the released models' PyTorch files without torch (and without
running their pickles: :mod:`tokenformer.torchfile`) and writes one
safetensors file with the library's tensor names and the model's
configuration in its metadata, as ``tf_model_save`` writes it, so that
``tf_model_open`` / :meth:`tokenformer.Model.open` and ``generate`` take
the result directly.

Sources (what ``source`` may name):

* a ``state_dict`` file, ``pytorch_model.bin`` or ``*.pt``: the zip format
  of ``torch.save`` or its legacy (pre-1.6) format; a directory holding a
  ``pytorch_model.bin``;
* a DeepSpeed checkpoint: its directory (``global_stepN/``, or the one above
  it with a ``latest`` file) or its ``mp_rank_00_model_states.pt``; weights
  under ``module``, or, for pipeline engines (``module`` is None), in the
  per-layer files ``layer_XX-model_00-model_states.pt`` beside it;
* a safetensors file under official or library names (to add the metadata).

Weights may be float32, float16 or bfloat16 (widened to float32 exactly).
Names: the official GPT-NeoX ones, ``sequential.0.word_embeddings.weight``
= ``embed.weight``, ``sequential.{i+2}.<rest>`` = ``layers.{i}.<rest>``,
``sequential.{L+3}.norm.*`` = ``final_norm.*``, or the library's own; a
leading ``module.`` is dropped.  Rotary ``inv_freq`` buffers (older GPT-NeoX
saved them) are checked against the configuration and not written.
Anything else, a missing tensor or a shape that disagrees is an error
naming the tensor as the file calls it.

The configuration comes from the official YAML (``config=``, read by the
library's own parser: ``vocab_size`` defaults to 50304 when absent, as the
library does) and from the weights: num_layers, hidden_size, vocab_size and
the three slot numbers are read off the shapes (and must agree with the
YAML).  Without a YAML, the keys the weights cannot tell must be given:
num_attention_heads (a DeepSpeed checkpoint's GPT-NeoX ``args`` name it),
rotary_pct, norm_activation_type and seq_length; rotary_emb_base and
layernorm_epsilon default to the official 10000 and 1e-5.  The result is
checked by the library's configuration checks before anything is written.

The output is written atomically (temporary file, fsync, rename): on any
error nothing is left behind.  Command line: ``tools/convert_checkpoint.py``,
``tf-convert`` (installed with the package) or ``python3 -m
tokenformer.convert``; ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import safetensors, torchfile
from .config import Config
from .errors import TokenformerError
from .params import ModelParams
from .runtime import norm_type_name, version_string

__all__ = ["convert", "convert_state_dict", "ConversionError", "ConversionReport",
           "tensor_shapes", "main", "FORMAT_TAG"]

#: The ``format`` metadata of the library's checkpoints (lib/io/checkpoint.c).
FORMAT_TAG = "tokenformer-checkpoint-1"

PathLike = Union[str, "os.PathLike[str]"]

_ATTN_SETS = ("query", "key", "value", "proj")
_PARAM_TOKENS = ("key_param_tokens", "value_param_tokens")

# The configuration keys (official YAML names) in the order tf_model_save
# writes them, with the ModelParams field of each.
_META_KEYS = ("num_layers", "hidden_size", "num_attention_heads", "qkv_slot_num",
              "proj_slot_num", "ffn_slot_num", "rotary_pct", "rotary_emb_base",
              "norm_activation_type", "vocab_size", "seq_length", "layernorm_epsilon",
              "init_method_std", "seed")
_FIELD = {k: ("norm" if k == "norm_activation_type" else k) for k in _META_KEYS}
_FLOAT_KEYS = ("rotary_pct", "rotary_emb_base", "layernorm_epsilon", "init_method_std")
#: Keys that change the computation and that no weight shape tells.
REQUIRED_WITHOUT_CONFIG = ("num_attention_heads", "rotary_pct", "norm_activation_type",
                           "seq_length")


_DEFAULT = "library default"


class ConversionError(Exception):
    """A checkpoint that cannot be converted; the message says why."""


@dataclass
class ConversionReport:
    """What :func:`convert` did: the output and its size, the source's
    layout and dtypes, the :class:`ModelParams` written, where each
    configuration key came from, the tensors read but not written."""
    output: str
    bytes: int
    layout: str
    dtypes: List[str]
    params: ModelParams
    sources: Dict[str, str]
    ignored: List[str] = field(default_factory=list)
    seconds: float = 0.0


# ---- tensors of any source ---------------------------------------------------------


class _ArrayTensor(object):
    """An in-memory array with the interface of the file tensors."""

    def __init__(self, value: Any):
        a = np.asarray(value)
        self._a = a
        self.shape = tuple(a.shape)
        self.dtype = a.dtype.name

    def float32(self) -> np.ndarray:
        if self._a.dtype.kind != "f":
            raise ConversionError("a tensor of dtype %s is not floating point" % self.dtype)
        return np.ascontiguousarray(self._a, dtype=np.float32)


class _Source(object):
    """The tensors of a checkpoint under the names the file uses."""

    def __init__(self, layout: str, origin: str = ""):
        self.layout = layout
        self.origin = origin  # the path given, for the metadata
        self.tensors: "collections.OrderedDict[str, Any]" = collections.OrderedDict()
        self.args: Dict[str, Any] = {}
        self._open: List[Any] = []

    def keep_open(self, f: Any) -> Any:
        self._open.append(f)
        return f

    def close(self) -> None:
        for f in self._open:
            f.close()
        self._open = []


_MP_RANK = re.compile(r"mp_rank_(\d+)_model_states\.pt")
_LAYER_FILE = re.compile(r"layer_(\d+)-model_(\d+)-model_states\.pt")


def _tensor_dict(obj: Any, path: str, what: str) -> Mapping[str, Any]:
    if not isinstance(obj, dict):
        raise ConversionError("%s: %s is a %s, not a dict of tensors"
                              % (path, what, type(obj).__name__))
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, torchfile.TensorRef):
            raise ConversionError("%s: %s has the entry %r = %s, not a named tensor"
                                  % (path, what, k, type(v).__name__))
    return obj


def _weights_of(obj: Any, path: str) -> Tuple[Optional[Mapping[str, Any]], Dict[str, Any]]:
    """The state_dict inside a loaded file (None: a pipeline checkpoint
    whose weights are in per-layer files) and GPT-NeoX's ``args`` if any."""
    if not isinstance(obj, dict):
        raise ConversionError("%s holds a %s, not a state_dict or a DeepSpeed checkpoint"
                              % (path, type(obj).__name__))
    args = obj.get("args")
    args = dict(args) if isinstance(args, dict) else {}
    for key in ("module", "model", "state_dict"):
        inner = obj.get(key, False)
        if inner is False or isinstance(inner, torchfile.TensorRef):
            continue
        if inner is None and key == "module":
            return None, args
        return _tensor_dict(inner, path, "'%s'" % key), args
    return _tensor_dict(obj, path, "the state_dict"), args


def _load_torch(src: _Source, path: str) -> Any:
    try:
        return src.keep_open(torchfile.load(path)).obj
    except torchfile.TorchFileError as e:
        raise ConversionError(str(e)) from None
    except OSError as e:
        raise ConversionError("%s: %s" % (path, e.strerror or e)) from None


def _add(src: _Source, sd: Mapping[str, Any], prefix: str = "") -> None:
    for k, v in sd.items():
        name = prefix + k
        if name in src.tensors:
            raise ConversionError("tensor %s appears twice in the checkpoint" % name)
        src.tensors[name] = v


def _read_layer_files(src: _Source, folder: str) -> None:
    found = []
    for n in sorted(os.listdir(folder)):
        m = _LAYER_FILE.fullmatch(n)
        if m:
            if int(m.group(2)) != 0:
                raise ConversionError("%s: %s is a model-parallel shard; only checkpoints "
                                      "with model_parallel_size 1 (as every official "
                                      "config) are supported" % (folder, n))
            found.append((int(m.group(1)), n))
    if not found:
        raise ConversionError("%s: the DeepSpeed checkpoint's 'module' is None (a pipeline "
                              "checkpoint) but there are no layer_XX-model_00-model_states.pt "
                              "files beside it" % folder)
    for idx, n in sorted(found):
        path = os.path.join(folder, n)
        _add(src, _tensor_dict(_load_torch(src, path), path, "the layer file"),
             "sequential.%d." % idx)


def _read_deepspeed_dir(src: _Source, folder: str) -> None:
    names = os.listdir(folder)
    ranks = sorted(n for n in names if _MP_RANK.fullmatch(n))
    if any(n != "mp_rank_00_model_states.pt" for n in ranks):
        raise ConversionError("%s: model-parallel shards (%s); only checkpoints with "
                              "model_parallel_size 1 (as every official config) are supported"
                              % (folder, ", ".join(ranks)))
    weights = None
    if ranks:
        path = os.path.join(folder, ranks[0])
        weights, src.args = _weights_of(_load_torch(src, path), path)
    if weights is not None:
        src.layout = "DeepSpeed checkpoint %s (weights under 'module')" % folder
        _add(src, weights)
    else:
        src.layout = "DeepSpeed pipeline checkpoint %s (layer_XX files)" % folder
        _read_layer_files(src, folder)


def _is_safetensors(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def _open_source(path: str) -> _Source:
    try:
        src = _open_path(path)
    except OSError as e:  # unreadable files and directories
        raise ConversionError("%s: %s" % (e.filename or path, e.strerror or e)) from None
    src.origin = os.path.basename(os.path.normpath(path))
    return src


def _open_path(path: str) -> _Source:
    if os.path.isdir(path):
        names = os.listdir(path)
        if any(_MP_RANK.fullmatch(n) or _LAYER_FILE.fullmatch(n) for n in names):
            src = _Source("DeepSpeed checkpoint")
            try:
                _read_deepspeed_dir(src, path)
            except BaseException:
                src.close()
                raise
            return src
        if "latest" in names:
            with open(os.path.join(path, "latest")) as latest:
                tag = latest.read().strip()
            if not tag or "/" in tag or tag in (".", ".."):
                raise ConversionError("%s/latest names %r, not a checkpoint directory"
                                      % (path, tag))
            return _open_path(os.path.join(path, tag))
        if "pytorch_model.bin" in names:
            return _open_path(os.path.join(path, "pytorch_model.bin"))
        raise ConversionError("%s: no checkpoint here (looked for mp_rank_00_model_states.pt, "
                              "layer_XX-model_00-model_states.pt, a 'latest' file and "
                              "pytorch_model.bin)" % path)
    if not os.path.exists(path):
        raise ConversionError("%s: no such file or directory" % path)
    src = _Source("")
    try:
        if _is_safetensors(path):
            try:
                f = src.keep_open(safetensors.SafetensorsFile(path))
            except ValueError as e:
                raise ConversionError(str(e)) from None
            src.layout = "safetensors file %s" % path
            _add(src, f.tensors)
            return src
        weights, src.args = _weights_of(_load_torch(src, path), path)
        if weights is None:
            _read_layer_files(src, os.path.dirname(os.path.abspath(path)))
            src.layout = "DeepSpeed pipeline checkpoint %s (layer_XX files)" % path
        else:
            fmt = src._open[0].format
            src.layout = "PyTorch %s file %s" % ("zip-format" if fmt == "zip" else fmt, path)
            _add(src, weights)
    except BaseException:
        src.close()
        raise
    return src


# ---- names ----------------------------------------------------------------------------

_OFFICIAL = re.compile(r"sequential\.(\d+)\.(.+)")
_LAYER_REST = re.compile(r"(attention\.(?:%s)|mlp)\.(?:%s)" % ("|".join(_ATTN_SETS),
                                                               "|".join(_PARAM_TOKENS)))
_INV_FREQ = "attention.rotary_emb.inv_freq"


def _map_names(names: Sequence[str]) -> Tuple[Dict[str, str], Dict[int, str], List[str], int]:
    """({library name: file name}, {layer: inv_freq file name}, [unknown
    file names], num_layers) for the names of a checkpoint."""
    strip = bool(names) and all(n.startswith("module.") for n in names)
    to_lib: Dict[str, str] = {}
    inv_freq: Dict[int, str] = {}
    unknown: List[str] = []
    by_index: Dict[int, List[Tuple[str, str]]] = collections.defaultdict(list)
    for orig in names:
        n = orig[len("module."):] if strip else orig
        m = _OFFICIAL.fullmatch(n)
        if m:
            by_index[int(m.group(1))].append((m.group(2), orig))
        elif n in ("embed.weight", "final_norm.weight", "final_norm.bias"):
            to_lib[n] = orig
        elif n.startswith("layers."):
            parts = n.split(".", 2)
            if len(parts) == 3 and parts[1].isdigit() and _LAYER_REST.fullmatch(parts[2]):
                to_lib[n] = orig
            elif len(parts) == 3 and parts[1].isdigit() and parts[2] == _INV_FREQ:
                inv_freq[int(parts[1])] = orig
            else:
                unknown.append(orig)
        else:
            unknown.append(orig)
    if by_index and to_lib:
        raise ConversionError("the checkpoint mixes official names (sequential.N.*) with the "
                              "library's (%s)" % sorted(to_lib)[0])
    if to_lib:
        layers = {int(n.split(".")[1]) for n in to_lib if n.startswith("layers.")}
        return to_lib, inv_freq, unknown, (max(layers) + 1 if layers else 0)
    layer_idx = sorted(i for i, items in by_index.items()
                       if any(r.startswith(("attention.", "mlp.")) for r, _ in items))
    norm_idx = sorted(i for i, items in by_index.items() if any(r.startswith("norm.")
                                                                 for r, _ in items))
    L = len(layer_idx)
    if layer_idx and layer_idx != list(range(2, L + 2)):
        raise ConversionError("the layers are at sequential.%s: a GPT-NeoX pipeline model of %d "
                              "layers has them at sequential.2 .. sequential.%d"
                              % (",".join(map(str, layer_idx)), L, L + 1))
    if norm_idx and norm_idx != [L + 3]:
        raise ConversionError("the final norm is at sequential.%s: after %d layers it belongs "
                              "at sequential.%d" % (",".join(map(str, norm_idx)), L, L + 3))
    for i, items in sorted(by_index.items()):
        for rest, orig in items:
            if i == 0 and rest == "word_embeddings.weight":
                to_lib["embed.weight"] = orig
            elif i == L + 3 and rest in ("norm.weight", "norm.bias"):
                to_lib["final_" + rest] = orig
            elif 2 <= i < L + 2 and _LAYER_REST.fullmatch(rest):
                to_lib["layers.%d.%s" % (i - 2, rest)] = orig
            elif 2 <= i < L + 2 and rest == _INV_FREQ:
                inv_freq[i - 2] = orig
            else:
                unknown.append(orig)
    return to_lib, inv_freq, unknown, L


def _official(lib_name: str, num_layers: int) -> str:
    """The GPT-NeoX name of a library tensor name."""
    if lib_name == "embed.weight":
        return "sequential.0.word_embeddings.weight"
    if lib_name.startswith("final_norm."):
        return "sequential.%d.norm.%s" % (num_layers + 3, lib_name[len("final_norm."):])
    _, i, rest = lib_name.split(".", 2)
    return "sequential.%d.%s" % (int(i) + 2, rest)


def _describe(lib_name: str, num_layers: int, official: bool) -> str:
    """A tensor as a file of that naming calls it (official: with the
    library's name in parentheses)."""
    if not official:
        return lib_name
    return "%s (%s)" % (_official(lib_name, num_layers), lib_name)


def tensor_shapes(params: ModelParams) -> "collections.OrderedDict[str, Tuple[int, ...]]":
    """{library tensor name: shape} of a model, in the library's order
    (that of ``Model.tensor_names()``; the SPEC's tensor names)."""
    d = int(params.hidden_size)
    out: "collections.OrderedDict[str, Tuple[int, ...]]" = collections.OrderedDict()
    out["embed.weight"] = (int(params.vocab_size), d)
    for i in range(int(params.num_layers)):
        for s in _ATTN_SETS:
            n = int(params.proj_slot_num if s == "proj" else params.qkv_slot_num)
            for t in _PARAM_TOKENS:
                out["layers.%d.attention.%s.%s" % (i, s, t)] = (n, d)
        for t in _PARAM_TOKENS:
            out["layers.%d.mlp.%s" % (i, t)] = (int(params.ffn_slot_num), d)
    out["final_norm.weight"] = (d,)
    out["final_norm.bias"] = (d,)
    return out


# ---- the configuration -------------------------------------------------------------


def _value(p: ModelParams, key: str) -> Any:
    v = getattr(p, _FIELD[key])
    return norm_type_name(v) if key == "norm_activation_type" else v


def _set(p: ModelParams, key: str, value: Any) -> None:
    setattr(p, _FIELD[key], value)


def _from_weights(tensors: Mapping[str, Any], to_lib: Mapping[str, str],
                  num_layers: int, official: bool) -> Dict[str, Tuple[int, str]]:
    """{key: (value, "tensor <name> [shape]")} for the keys the shapes tell."""
    out: Dict[str, Tuple[int, str]] = {}

    def shape_of(lib, dim):
        name = to_lib.get(lib)
        if name is None:
            return None
        shape = tuple(tensors[name].shape)
        if len(shape) != 2:
            raise ConversionError("tensor %s has shape %s; a %s is 2-D"
                                  % (name, list(shape), lib))
        return shape[dim], "tensor %s %s" % (name, list(shape))

    if num_layers < 1:
        raise ConversionError("the checkpoint has no TokenFormer layers (no sequential.N."
                              "attention.* / mlp.* tensors)")
    out["num_layers"] = (num_layers, "%d layers" % num_layers)
    for key, lib, dim in (("vocab_size", "embed.weight", 0), ("hidden_size", "embed.weight", 1),
                          ("qkv_slot_num", "layers.0.attention.query.key_param_tokens", 0),
                          ("proj_slot_num", "layers.0.attention.proj.key_param_tokens", 0),
                          ("ffn_slot_num", "layers.0.mlp.key_param_tokens", 0)):
        got = shape_of(lib, dim)
        if got is None:
            raise ConversionError("cannot read %s off the weights: the checkpoint has no %s"
                                  % (key, _describe(lib, num_layers, official)))
        out[key] = got
    return out


def _validated(p: ModelParams) -> ModelParams:
    """p passed through the library's configuration checks (heads divide
    the width, an even number of rotary dims, ranges ...)."""
    doc = {k: _value(p, k) for k in _META_KEYS}
    try:
        with Config.parse(json.dumps(doc)) as cfg:
            q = cfg.model_params()
    except TokenformerError as e:
        raise ConversionError("the model configuration is not valid: %s" % e.message) from None
    q.scale_policy = p.scale_policy
    return q


def _resolve_params(tensors: Mapping[str, Any], to_lib: Mapping[str, str], num_layers: int,
                    official: bool, config: Optional[PathLike], overrides: Mapping[str, Any],
                    args: Mapping[str, Any]) -> Tuple[ModelParams, Dict[str, str]]:
    sources: Dict[str, str] = {}
    if config is not None:
        try:
            with Config.load(config) as cfg:
                p = cfg.model_params()
                for k in _META_KEYS:
                    sources[k] = "config" if cfg.has(k) else _DEFAULT
        except TokenformerError as e:
            raise ConversionError("%s" % e.message) from None
    else:
        p = ModelParams()
        sources = {k: _DEFAULT for k in _META_KEYS}
    for k, v in overrides.items():
        if v is not None:
            _set(p, k, v)
            sources[k] = "command line"
    heads = args.get("num_attention_heads")
    if isinstance(heads, int) and not isinstance(heads, bool):
        if sources["num_attention_heads"] == _DEFAULT:
            p.num_attention_heads = heads
            sources["num_attention_heads"] = "checkpoint args"
        elif p.num_attention_heads != heads:
            raise ConversionError("num_attention_heads is %d (%s), but the checkpoint's "
                                  "GPT-NeoX args say %d" % (p.num_attention_heads,
                                                            sources["num_attention_heads"], heads))
    for k, (v, why) in _from_weights(tensors, to_lib, num_layers, official).items():
        if sources[k] in ("config", "command line"):
            if _value(p, k) != v:
                raise ConversionError("%s is %s in the %s, but the checkpoint has %s (%s)"
                                      % (k, _value(p, k), sources[k], v, why))
            sources[k] += ", weights"
        else:
            sources[k] = "weights"
            if k == "vocab_size" and config is not None:
                sources[k] += " (the config has none; the library's default %s %d)" % (
                    "is the same," if v == p.vocab_size else "would be", p.vocab_size)
            _set(p, k, v)
    if config is None:
        missing = [k for k in REQUIRED_WITHOUT_CONFIG if sources[k] == _DEFAULT]
        if missing:
            raise ConversionError(
                "the weights do not tell %s; give the official YAML with --config (e.g. "
                "150M_eval.yml), or %s" % (", ".join(missing), " ".join(
                    "--%s VALUE" % k.replace("_", "-") for k in missing)))
    return _validated(p), sources


def _check_inv_freq(tensors: Mapping[str, Any], inv_freq: Mapping[int, str],
                    p: ModelParams) -> None:
    head_dim = p.hidden_size // p.num_attention_heads
    rot = head_dim if p.rotary_pct == 1.0 else int(head_dim * p.rotary_pct)
    want = 1.0 / (p.rotary_emb_base ** (np.arange(0, rot, 2, dtype=np.float64) / rot))
    for name in inv_freq.values():
        t = tensors[name]
        count = int(np.prod(t.shape, dtype=np.int64))
        ok = len(t.shape) == 1 and count == want.size  # checked before reading it
        if ok:
            ok = np.allclose(t.float32().astype(np.float64), want, rtol=1e-2, atol=0)
        if not ok:
            raise ConversionError(
                "tensor %s (the rotary frequencies the model was trained with, %d of them) "
                "does not match rotary_pct %g and rotary_emb_base %g of the configuration "
                "(%d frequencies): is it the model's config?"
                % (name, count, p.rotary_pct, p.rotary_emb_base, want.size))


# ---- writing -----------------------------------------------------------------------

_OUT_DTYPES = {"f32": "F32", "f16": "F16", "bf16": "BF16"}


def _to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns, rounded to nearest even (NaN kept NaN)."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    rounded = ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))
               >> np.uint32(16)).astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():
        rounded[nan] = ((bits[nan] >> np.uint32(16)) | np.uint32(0x40)).astype(np.uint16)
    return rounded


def _producer(tensor: Any, name: str, out_dtype: str) -> Callable[[], np.ndarray]:
    def produce() -> np.ndarray:
        try:
            a = tensor.float32()
        except (torchfile.TorchFileError, ValueError) as e:
            raise ConversionError("tensor %s: %s" % (name, e)) from None
        if out_dtype == "BF16":
            return _to_bf16_bits(a)
        if out_dtype == "F16":
            with np.errstate(over="ignore"):
                h = a.astype(np.float16)
            if np.isinf(h).sum() > np.isinf(a).sum():
                raise ConversionError("tensor %s has values beyond float16's range (65504): "
                                      "use --dtype f32 or bf16" % name)
            return h
        return a
    return produce


def metadata(params: ModelParams, converted_from: str = "") -> Dict[str, str]:
    """The safetensors metadata of a converted model: the keys and number
    formats of ``tf_model_save`` (format tag, library version, the
    configuration under the official names, scale_policy, task), plus
    ``converted_from``.  The per-set ``pattention.*.tau`` entries are left
    out: absent, the library uses each set's default tau, as the official
    code does."""
    meta = collections.OrderedDict()
    meta["format"] = FORMAT_TAG
    meta["library_version"] = version_string()
    for k in _META_KEYS:
        v = _value(params, k)
        meta[k] = "%.17g" % v if k in _FLOAT_KEYS else str(v)
    meta["scale_policy"] = "pinned" if params.scale_policy == 1 else "follow_n"
    meta["task"] = "language"  # converted checkpoints are language models
    if converted_from:
        meta["converted_from"] = converted_from
    return meta


def _convert(src: _Source, output: PathLike, config: Optional[PathLike],
             overrides: Mapping[str, Any], dtype: str,
             log: Optional[Callable[[str], None]]) -> ConversionReport:
    t0 = time.monotonic()
    say = log or (lambda s: None)
    if dtype not in _OUT_DTYPES:
        raise ConversionError("dtype %r: choose f32, f16 or bf16" % dtype)
    tensors = src.tensors
    if not tensors:
        raise ConversionError("%s holds no tensors" % (src.layout or "the checkpoint"))
    to_lib, inv_freq, unknown, L = _map_names(list(tensors))
    if unknown:
        raise ConversionError("the checkpoint has %d tensor%s that are not part of a "
                              "TokenFormer model: %s" % (
                                  len(unknown), "s" if len(unknown) > 1 else "",
                                  ", ".join(unknown[:8]) + (" ..." if len(unknown) > 8 else "")))
    official = any("sequential." in n for n in to_lib.values())
    p, sources = _resolve_params(tensors, to_lib, L, official, config, overrides, src.args)
    want = tensor_shapes(p)
    problems = []
    for lib, shape in want.items():
        name = to_lib.get(lib)
        if name is None:
            problems.append("missing %s" % _describe(lib, L, official))
            continue
        got = tuple(tensors[name].shape)
        if got != shape:
            problems.append("%s has shape %s, the model needs %s" % (name, list(got),
                                                                      list(shape)))
        elif tensors[name].dtype not in ("float32", "float16", "bfloat16", "float64"):
            problems.append("%s has dtype %s, not a floating-point type"
                            % (name, tensors[name].dtype))
    extra = sorted(set(to_lib) - set(want))
    problems += ["%s is not part of a %d-layer model" % (to_lib[n], L) for n in extra]
    if problems:
        raise ConversionError("the checkpoint does not match the model (%d problem%s):\n  %s"
                              % (len(problems), "s" if len(problems) > 1 else "",
                                 "\n  ".join(problems[:20] + (["..."] if len(problems) > 20
                                                              else []))))
    if inv_freq:
        _check_inv_freq(tensors, inv_freq, p)
    dtypes = sorted({tensors[to_lib[n]].dtype for n in want})
    say("source: %s, %d tensors (%s)" % (src.layout, len(tensors), ", ".join(dtypes)))
    for k in _META_KEYS:
        say("  %-22s %-16s %s" % (k, _value(p, k), sources[k]))
    if inv_freq:
        say("  not written: %d rotary inv_freq buffers (they match rotary_pct and "
            "rotary_emb_base)" % len(inv_freq))
    out = os.fspath(output)
    if os.path.exists(out) and any(os.path.exists(getattr(f, "path", "")) and
                                   os.path.samefile(out, f.path) for f in src._open):
        raise ConversionError("%s is the checkpoint being read; choose another output" % out)
    st = _OUT_DTYPES[dtype]
    entries = [(lib, st, shape, _producer(tensors[to_lib[lib]], to_lib[lib], st))
               for lib, shape in want.items()]
    try:
        size = safetensors.write(out, entries, metadata(p, src.origin))
    except OSError as e:
        raise ConversionError("%s: cannot write: %s" % (out, e.strerror or e)) from None
    seconds = time.monotonic() - t0
    say("wrote %s: %d tensors, %s, %d bytes in %.1f s" % (out, len(want), st, size, seconds))
    return ConversionReport(output=out, bytes=size, layout=src.layout, dtypes=dtypes, params=p,
                            sources=sources, ignored=sorted(inv_freq.values()), seconds=seconds)


def convert(source: PathLike, output: PathLike, *, config: Optional[PathLike] = None,
            num_attention_heads: Optional[int] = None, rotary_pct: Optional[float] = None,
            rotary_emb_base: Optional[float] = None,
            norm_activation_type: Optional[str] = None, seq_length: Optional[int] = None,
            layernorm_epsilon: Optional[float] = None, dtype: str = "f32",
            log: Optional[Callable[[str], None]] = None) -> ConversionReport:
    """Converts the checkpoint at ``source`` (see the module docstring for
    the layouts) to the library's safetensors at ``output``.

    ``config``: the official YAML of the model.  The keyword arguments
    override it (or stand in for it), under the official key names.
    ``dtype``: "f32" (default), "f16" or "bf16" for the written tensors
    (a library that loads F16/BF16 tensors is needed for the last two).
    ``log``: called with each line of the summary (e.g. ``print``).
    Raises :class:`ConversionError`; then nothing is written."""
    overrides = dict(num_attention_heads=num_attention_heads, rotary_pct=rotary_pct,
                     rotary_emb_base=rotary_emb_base, norm_activation_type=norm_activation_type,
                     seq_length=seq_length, layernorm_epsilon=layernorm_epsilon)
    src = _open_source(os.fspath(source))
    try:
        return _convert(src, output, config, overrides, dtype, log)
    finally:
        src.close()


def convert_state_dict(state_dict: Mapping[str, Any], output: PathLike, *,
                       config: Optional[PathLike] = None,
                       num_attention_heads: Optional[int] = None,
                       rotary_pct: Optional[float] = None,
                       rotary_emb_base: Optional[float] = None,
                       norm_activation_type: Optional[str] = None,
                       seq_length: Optional[int] = None,
                       layernorm_epsilon: Optional[float] = None, dtype: str = "f32",
                       log: Optional[Callable[[str], None]] = None) -> ConversionReport:
    """:func:`convert` for tensors already in memory: ``{name: array}``
    (numpy arrays, or anything ``np.asarray`` takes) under official or
    library names."""
    src = _Source("state_dict in memory")
    for k, v in state_dict.items():
        src.tensors[str(k)] = _ArrayTensor(v)
    overrides = dict(num_attention_heads=num_attention_heads, rotary_pct=rotary_pct,
                     rotary_emb_base=rotary_emb_base, norm_activation_type=norm_activation_type,
                     seq_length=seq_length, layernorm_epsilon=layernorm_epsilon)
    return _convert(src, output, config, overrides, dtype, log)


# ---- command line --------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="tf-convert",
        description="Convert an official TokenFormer checkpoint (PyTorch state_dict such as "
                    "pytorch_model.bin, or a DeepSpeed checkpoint directory; fp32, fp16 or "
                    "bf16) to a libtokenformer safetensors file that tf_model_open and "
                    "generate open directly.  The pickle is read with a restricted "
                    "unpickler: a file that would run code is refused.",
        epilog="example: tf-convert TokenFormer-150M/pytorch_model.bin tokenformer-150m."
               "safetensors --config 150M_eval.yml")
    ap.add_argument("source", help="checkpoint file or directory")
    ap.add_argument("output", help="the safetensors file to write (atomically)")
    ap.add_argument("--config", metavar="YAML",
                    help="the model's official config (e.g. 150M_eval.yml)")
    ap.add_argument("--dtype", choices=sorted(_OUT_DTYPES), default="f32",
                    help="tensor type written (default f32; f16/bf16 need a library that "
                         "loads them)")
    g = ap.add_argument_group("configuration keys (override --config, or stand in for it)")
    g.add_argument("--num-attention-heads", type=int, metavar="N")
    g.add_argument("--rotary-pct", type=float, metavar="X")
    g.add_argument("--rotary-emb-base", type=float, metavar="X")
    g.add_argument("--norm-activation-type", choices=("l2_norm_gelu", "gelu_l2_norm",
                                                      "softmax"))
    g.add_argument("--seq-length", type=int, metavar="N")
    g.add_argument("--layernorm-epsilon", type=float, metavar="X")
    ap.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The ``tf-convert`` command; returns the exit status (0, 1 on a
    conversion error, 2 on a usage error)."""
    a = _parser().parse_args(argv)
    try:
        convert(a.source, a.output, config=a.config,
                num_attention_heads=a.num_attention_heads, rotary_pct=a.rotary_pct,
                rotary_emb_base=a.rotary_emb_base, norm_activation_type=a.norm_activation_type,
                seq_length=a.seq_length, layernorm_epsilon=a.layernorm_epsilon, dtype=a.dtype,
                log=None if a.quiet else print)
    except ConversionError as e:
        print("tf-convert: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
