"""Tests of tokenformer.ImageDataset (tf_image_dataset): IDX files written
here with numpy and gzip (independently of the library), batches against
numpy's own reading of the same bytes, augmentation properties, errors,
and Debian's Fashion-MNIST when it is installed.

    /usr/bin/python3 -m unittest discover -s bindings/python/tests -v
"""

import gzip
import os
import shutil
import struct
import tempfile
import unittest

import numpy as np

import helpers  # noqa: F401 (puts this tree's package first on sys.path)

import tokenformer as tf
from tokenformer.images import FASHION_MNIST_DIR


def idx_bytes(array, dtype_code=0x08):
    """An IDX file's bytes for a uint8 array."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    head = struct.pack(">BBBB", 0, 0, dtype_code, a.ndim)
    head += b"".join(struct.pack(">I", d) for d in a.shape)
    return head + a.tobytes()


class ImageFiles(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tf_images_py_")
        rng = np.random.default_rng(4)
        self.images = rng.integers(0, 256, size=(23, 6, 5), dtype=np.uint8)
        self.labels = (np.arange(23) % 7).astype(np.uint8)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, data, compress=False):
        path = os.path.join(self.dir, name)
        opener = gzip.open if compress else open
        with opener(path, "wb") as f:
            f.write(data)
        return path

    def pair(self, compress):
        return (self.write("img", idx_bytes(self.images), compress),
                self.write("lab", idx_bytes(self.labels), compress))

    def test_open_plain_and_gzip(self):
        for compress in (False, True):
            with tf.ImageDataset.open(*self.pair(compress)) as ds:
                self.assertEqual((len(ds), ds.height, ds.width, ds.num_classes), (23, 6, 5, 7))
                px, lab = ds.eval_batch(0, 23)
                self.assertEqual(px.dtype, np.float32)
                self.assertEqual(px.shape, (23, 6, 5))
                np.testing.assert_array_equal(px, (self.images / 255.0).astype(np.float32))
                np.testing.assert_array_equal(lab, self.labels)
                px, _ = ds.eval_batch(3, 4, dict(mean=0.3, std=0.7))
                np.testing.assert_allclose(px, (self.images[3:7] / 255.0 - 0.3) / 0.7,
                                           rtol=0, atol=1e-6)
                self.assertIn("23 images of 6x5, 7 classes", repr(ds))
            self.assertIn("closed", repr(ds))

    def test_eval_batches_cover_everything_in_order(self):
        ds = tf.ImageDataset.open(*self.pair(True))
        parts = list(ds.eval_batches(10, tf.ImageAugParams(shift=3, hflip=1)))
        self.assertEqual([len(l) for _, l in parts], [10, 10, 3])
        np.testing.assert_array_equal(np.concatenate([p for p, _ in parts]),
                                      (self.images / 255.0).astype(np.float32))

    def test_bad_files_raise_with_the_library_message(self):
        _, lab = self.pair(False)
        float_images = self.write("float", idx_bytes(self.images, dtype_code=0x0D))
        with self.assertRaises(tf.FormatError) as cm:
            tf.ImageDataset.open(float_images, lab)
        self.assertIn("float32", str(cm.exception))
        short = self.write("short.gz", idx_bytes(self.images)[:-1], compress=True)
        with self.assertRaises(tf.FormatError) as cm:
            tf.ImageDataset.open(short, lab)
        self.assertIn("truncated", str(cm.exception))
        with self.assertRaises(tf.IOError):
            tf.ImageDataset.open(self.dir, lab)
        fifo = os.path.join(self.dir, "fifo")
        os.mkfifo(fifo)
        with self.assertRaises(tf.IOError) as cm:
            tf.ImageDataset.open(fifo, lab)
        self.assertIn("not a regular file", str(cm.exception))
        with self.assertRaises(tf.FormatError) as cm:
            tf.ImageDataset.open(lab, self.pair(False)[0])
        self.assertIn("swapped", str(cm.exception))


class ImageStream(unittest.TestCase):

    def setUp(self):
        rng = np.random.default_rng(8)
        self.images = rng.integers(0, 256, size=(64, 4, 7), dtype=np.uint8)
        # label = index, so a batch says which images it holds
        self.ds = tf.ImageDataset.from_arrays(self.images, np.arange(64))

    def tearDown(self):
        self.ds.close()

    def test_pure_function_of_seed_and_index(self):
        a = self.ds.train_batch(5, 17, 8)
        self.ds.train_batch(6, 0, 8)
        b = self.ds.train_batch(5, 17, 8)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        c = self.ds.train_batch(6, 17, 8)
        self.assertFalse(np.array_equal(a[1], c[1]))

    def test_epoch_is_a_permutation(self):
        per = self.ds.epoch_batches(8)
        self.assertEqual(per, 8)
        for epoch in range(3):
            seen = np.concatenate([self.ds.train_batch(1, epoch * per + j, 8)[1]
                                   for j in range(per)])
            self.assertEqual(sorted(seen.tolist()), list(range(64)))

    def test_flips_and_no_augmentation(self):
        raw = (self.images / 255.0).astype(np.float32)
        flips = 0
        for i in range(40):
            px, lab = self.ds.train_batch(2, i, 8, dict(shift=0, hflip=1))
            for p, l in zip(px, lab):
                same = np.array_equal(p, raw[l])
                mirror = np.array_equal(p, raw[l][:, ::-1])
                self.assertTrue(same != mirror)
                flips += mirror
        self.assertTrue(100 < flips < 220, flips)
        px, lab = self.ds.train_batch(2, 3, 8, dict(shift=0, hflip=0))
        np.testing.assert_array_equal(px, raw[lab])

    def test_shift_keeps_pixels_or_pads(self):
        raw = self.images.astype(np.float32) / 255.0
        px, lab = self.ds.train_batch(3, 0, 64, dict(shift=1, hflip=0))
        moved = 0
        for p, l in zip(px, lab):
            # some shift in [-1, 1]^2 with zero padding reproduces p
            ok = False
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    pad = np.zeros((4 + 2, 7 + 2), np.float32)
                    pad[1:5, 1:8] = raw[l]
                    if np.allclose(p, pad[1 + dy:5 + dy, 1 + dx:8 + dx], atol=1e-7):
                        ok = True
                        moved += (dy, dx) != (0, 0)
            self.assertTrue(ok)
        self.assertGreater(moved, 30)

    def test_errors(self):
        with self.assertRaises(tf.RangeError):
            self.ds.train_batch(1, 0, 65)
        with self.assertRaises(tf.RangeError):
            self.ds.eval_batch(60, 5)
        with self.assertRaises(tf.ArgumentError) as cm:
            self.ds.train_batch(1, 0, 4, dict(std=0.0))
        self.assertIn("std", str(cm.exception))
        self.assertIn("std", self.ds.errmsg())
        with self.assertRaises(TypeError):  # a misspelt field, as for every params struct
            tf.ImageAugParams(shfit=1)
        with self.assertRaises(tf.ShapeError):
            tf.ImageDataset.from_arrays(self.images, np.arange(63))
        with self.assertRaises(tf.ShapeError):
            tf.ImageDataset.from_arrays(self.images.reshape(64, 28), np.arange(64))
        with self.assertRaises(tf.ArgumentError):
            tf.ImageDataset.from_arrays(self.images.astype(np.int32) + 1, np.arange(64))
        with self.assertRaises(tf.RangeError):
            tf.ImageDataset.from_arrays(self.images, -np.arange(64))
        with self.assertRaises(TypeError):
            tf.ImageDataset()
        self.ds.close()
        with self.assertRaises(tf.ClosedError):
            self.ds.train_batch(1, 0, 4)

    def test_params_defaults(self):
        p = tf.ImageAugParams()
        self.assertEqual((p.shift, p.hflip, p.mean, p.std), (2, 1, 0.0, 1.0))
        self.assertEqual(tf.ImageAugParams(mean=0.286).mean, 0.286)


@unittest.skipUnless(os.path.exists(os.path.join(FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz")),
                     "no Fashion-MNIST (apt-get install dataset-fashion-mnist)")
class FashionMNIST(unittest.TestCase):

    def test_test_split(self):
        with tf.ImageDataset.fashion_mnist("test") as ds:
            self.assertEqual((len(ds), ds.height, ds.width, ds.num_classes), (10000, 28, 28, 10))
            counts = np.zeros(10, np.int64)
            for _, lab in ds.eval_batches(2500):
                counts += np.bincount(lab, minlength=10)
            np.testing.assert_array_equal(counts, 1000)
            # the same bytes as numpy reads from the gzip file
            with gzip.open(os.path.join(FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz")) as f:
                raw = np.frombuffer(f.read()[16:], np.uint8).reshape(10000, 28, 28)
            px, _ = ds.eval_batch(9990, 10)
            np.testing.assert_array_equal(px, (raw[9990:] / 255.0).astype(np.float32))
        with self.assertRaises(ValueError):
            tf.ImageDataset.fashion_mnist("validation")


if __name__ == "__main__":
    unittest.main()
