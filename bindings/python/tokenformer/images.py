"""Labelled grayscale images for classification (``tf_image_dataset``)."""

from __future__ import annotations

import ctypes
import os

import numpy as np
from numpy.typing import ArrayLike
from typing import Any, Dict, Iterator, Optional, Tuple, Union

from . import _lib, errors
from ._lib import F, PathLike
from .params import ImageAugParams

__all__ = ["ImageDataset", "FASHION_MNIST_DIR"]

#: Where Debian's ``dataset-fashion-mnist`` puts the files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

#: Augmentation and normalisation as calls take it: an ImageAugParams, a
#: dict of its fields, or None for the library's defaults.
AugLike = Union[ImageAugParams, Dict[str, Any], None]
#: A batch: pixels float32 [B, H, W] and labels int32 [B].
Batch = Tuple[np.ndarray, np.ndarray]

_FASHION_PREFIX = {"train": "train", "test": "t10k", "t10k": "t10k"}


def _aug(params: "AugLike") -> Optional[ImageAugParams]:
    """An ImageAugParams (or None: the library's defaults) from params, a
    dict of fields, or an ImageAugParams."""
    if params is None:
        return None
    if isinstance(params, ImageAugParams):
        return params
    if isinstance(params, dict):
        return ImageAugParams(**params)
    raise TypeError("params must be an ImageAugParams, a dict of its fields or None, not %s"
                    % type(params).__name__)


def _ref(params: Optional[ImageAugParams]) -> Any:
    return None if params is None else ctypes.byref(params)


class ImageDataset(_lib.Handle):
    """N grayscale H x W images with integer labels, in memory:
    ``ImageDataset.open(images_path, labels_path)`` (IDX files, plain or
    gzip), ``ImageDataset.fashion_mnist("train")`` or
    ``ImageDataset.from_arrays(images, labels)``.

    Batches are ``(pixels, labels)``: new float32 [B, H, W] and int32 [B]
    arrays.  ``params`` (an :class:`ImageAugParams`, a dict of its fields,
    or None for the defaults: shift 2, hflip 1, mean 0, std 1) sets the
    augmentation of training batches and the normalisation of both kinds;
    the header (``tokenformer.h``, "Image datasets") states the rules.
    """

    _free_fn = "tf_image_dataset_free"
    _errmsg_fn = "tf_image_dataset_errmsg"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("use ImageDataset.open(), ImageDataset.fashion_mnist() or "
                        "ImageDataset.from_arrays()")

    @classmethod
    def _wrap(cls, ptr: Any) -> "ImageDataset":
        self = cls.__new__(cls)
        _lib.Handle.__init__(self, ptr)
        return self

    @classmethod
    def open(cls, images_path: PathLike, labels_path: PathLike) -> "ImageDataset":
        """``tf_image_dataset_open()``: an IDX image file [N, H, W] and an
        IDX label file [N] (unsigned bytes), each plain or gzip."""
        out = _lib.ImageDatasetP()
        _lib.check(F.tf_image_dataset_open(_lib.path_arg(images_path),
                                           _lib.path_arg(labels_path), ctypes.byref(out)))
        return cls._wrap(out)

    @classmethod
    def fashion_mnist(cls, split: str = "train",
                      directory: PathLike = FASHION_MNIST_DIR) -> "ImageDataset":
        """Fashion-MNIST's "train" (60,000) or "test" (10,000) images from
        ``directory`` (Debian: ``apt-get install dataset-fashion-mnist``)."""
        try:
            prefix = _FASHION_PREFIX[split]
        except KeyError:
            raise ValueError("split must be 'train' or 'test', not %r" % (split,)) from None
        d = os.fsdecode(directory)
        return cls.open(os.path.join(d, prefix + "-images-idx3-ubyte.gz"),
                        os.path.join(d, prefix + "-labels-idx1-ubyte.gz"))

    @classmethod
    def from_arrays(cls, images: ArrayLike, labels: ArrayLike) -> "ImageDataset":
        """``tf_image_dataset_from_memory()``: images [N, H, W] of bytes
        (uint8, or integers in [0, 255]) and N labels >= 0 (copied)."""
        img = np.asarray(images)
        if img.ndim != 3:
            raise errors.ShapeError(2, "images must be [N, H, W], not of shape %s"
                                    % (img.shape,))
        if img.dtype != np.uint8:
            if img.size and (img.dtype.kind not in "iu" or img.min() < 0 or img.max() > 255):
                raise errors.ArgumentError(1, "images must be bytes: uint8, or integers in "
                                              "[0, 255] (got %s)" % img.dtype)
            img = img.astype(np.uint8)
        img = np.ascontiguousarray(img)
        lab = _lib.as_i32(labels, "labels").reshape(-1)
        if lab.size != img.shape[0]:
            raise errors.ShapeError(2, "%d images but %d labels" % (img.shape[0], lab.size))
        out = _lib.ImageDatasetP()
        _lib.check(F.tf_image_dataset_from_memory(
            img.ctypes.data_as(_lib.Pu8), _lib.iptr(lab), img.shape[0], img.shape[1],
            img.shape[2], ctypes.byref(out)))
        return cls._wrap(out)

    def errmsg(self) -> str:
        """``tf_image_dataset_errmsg()``: the last error on this dataset."""
        return _lib._dec(F.tf_image_dataset_errmsg(self._h()))

    @property
    def size(self) -> int:
        """N, the number of images."""
        return int(F.tf_image_dataset_size(self._h()))

    def __len__(self) -> int:
        return self.size

    @property
    def height(self) -> int:
        return int(F.tf_image_dataset_height(self._h()))

    @property
    def width(self) -> int:
        return int(F.tf_image_dataset_width(self._h()))

    @property
    def num_classes(self) -> int:
        """1 + the largest label."""
        return int(F.tf_image_dataset_num_classes(self._h()))

    def epoch_batches(self, B: int) -> int:
        """Training batches per epoch: N // B (0 if B is not in [1, N])."""
        return int(F.tf_image_dataset_epoch_batches(self._h(), int(B)))

    def _outputs(self, B: int) -> Batch:
        return (np.empty((B, self.height, self.width), np.float32), np.empty(B, np.int32))

    def train_batch(self, seed: int, i: int, B: int, params: AugLike = None) -> Batch:
        """Training batch ``i`` of the seeded epoch stream, augmented: a
        pure function of (seed, i, B, params)."""
        h = self._h()
        B = int(B)
        if B < 1:
            raise errors.RangeError(9, "B = %d must be >= 1" % B)
        p = _aug(params)
        px, lab = self._outputs(B)
        self._check(F.tf_image_dataset_train_batch(h, _ref(p), int(seed), int(i), B,
                                                   _lib.fptr(px), _lib.iptr(lab)))
        return px, lab

    def eval_batch(self, first: int, count: int, params: AugLike = None) -> Batch:
        """Images [first, first + count) in file order, normalised, never
        augmented."""
        h = self._h()
        count = int(count)
        if count < 1:
            raise errors.RangeError(9, "count = %d must be >= 1" % count)
        p = _aug(params)
        px, lab = self._outputs(count)
        self._check(F.tf_image_dataset_eval_batch(h, _ref(p), int(first), count,
                                                  _lib.fptr(px), _lib.iptr(lab)))
        return px, lab

    def eval_batches(self, B: int, params: AugLike = None) -> Iterator[Batch]:
        """Yields ``(pixels, labels)`` for the whole dataset in order, B at
        a time (the last batch may be shorter)."""
        B = int(B)
        if B < 1:
            raise errors.RangeError(9, "B = %d must be >= 1" % B)
        p = _aug(params)
        n = self.size
        for first in range(0, n, B):
            yield self.eval_batch(first, min(B, n - first), p)

    def __repr__(self) -> str:
        if self.closed:
            return "<ImageDataset closed>"
        return "<ImageDataset %d images of %dx%d, %d classes>" % (
            self.size, self.height, self.width, self.num_classes)
