"""Tests of the image classifier through the bindings (Model.vision):
forward against an independent numpy float64 computation of the same
model from its own tensors, prediction, training with the shared
optimizer, growth, checkpoints and the task checks.

    /usr/bin/python3 -m unittest discover -s bindings/python/tests -v
"""

import os
import tempfile
import unittest

import numpy as np

import helpers  # noqa: F401 (puts this tree's package first on sys.path)

import tokenformer as tf

SMALL = dict(image_size=8, patch_size=4, num_classes=3, patch_slot_num=6, head_slot_num=5,
             num_layers=1, hidden_size=8, num_attention_heads=2, qkv_slot_num=4,
             proj_slot_num=4, ffn_slot_num=8, init_method_std=0.3, seed=3)


def gelu(x):
    from math import erf
    return 0.5 * x * (1.0 + np.vectorize(erf)(x / np.sqrt(2.0)))


def pattention(x, keys, values):
    """The l2_norm_gelu Pattention with the follow_n scale (tau = sqrt(n))."""
    s = x @ keys.T
    n = keys.shape[0]
    s = s / np.linalg.norm(s, axis=-1, keepdims=True) * np.sqrt(n)
    return gelu(s) @ values


def layernorm(x, w=None, b=None, eps=1e-5):
    y = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)
    return y * w + b if w is not None else y


def numpy_logits(m, px):
    t = {k: m.get_tensor(k).astype(np.float64) for k in m.tensor_names()}
    vp = m.vision_params
    B, S, p, h = px.shape[0], vp.image_size, vp.patch_size, vp.num_attention_heads
    G = S // p
    patches = px.reshape(B, G, p, G, p).transpose(0, 1, 3, 2, 4).reshape(B, G * G, p * p)
    x = pattention(patches, t["patch_embed.key_param_tokens"],
                   t["patch_embed.value_param_tokens"]) + t["pos_embed"]
    for l in range(vp.num_layers):
        P = lambda name, y: pattention(y, t["layers.%d.%s.key_param_tokens" % (l, name)],
                                       t["layers.%d.%s.value_param_tokens" % (l, name)])
        u = layernorm(x)
        q, k, v = P("attention.query", u), P("attention.key", u), P("attention.value", u)
        d = q.shape[-1]
        hd = d // h
        q, k, v = (a.reshape(B, -1, h, hd).transpose(0, 2, 1, 3) for a in (q, k, v))
        a = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        o = (a @ v).transpose(0, 2, 1, 3).reshape(B, -1, d)
        x = x + P("attention.proj", o)
        x = x + P("mlp", layernorm(x))
    pooled = layernorm(x, t["final_norm.weight"], t["final_norm.bias"]).mean(1)
    return pattention(pooled, t["head.key_param_tokens"], t["head.value_param_tokens"])


class VisionTest(unittest.TestCase):
    def test_forward_matches_numpy_and_predict(self):
        with tf.Model.vision(**SMALL) as m:
            self.assertTrue(m.is_vision)
            self.assertEqual(m.tensor_names()[0], "pos_embed")
            px = np.random.default_rng(1).uniform(-1, 1, (3, 8, 8)).astype(np.float32)
            res = m.forward_images(px, [0, 1, 2])
            ref = numpy_logits(m, px.astype(np.float64))
            self.assertLess(np.abs(res.logits - ref).max(), 1e-4 * (1 + np.abs(ref).max()))
            lse = np.log(np.exp(ref).sum(1))
            want = np.mean(lse - ref[np.arange(3), [0, 1, 2]])
            self.assertAlmostEqual(res.loss, want, places=4)
            np.testing.assert_array_equal(m.predict(px), ref.argmax(1))
            with self.assertRaises(tf.errors.ShapeError):
                m.forward_images(np.zeros((2, 7, 7), np.float32))

    def test_label_smoothing(self):
        with tf.Model.vision(**SMALL) as m:
            px = np.random.default_rng(2).uniform(-1, 1, (3, 8, 8)).astype(np.float32)
            labels = [2, 0, 1]
            self.assertEqual(m.label_smoothing, 0.0)
            m.label_smoothing = 0.25
            self.assertEqual(m.label_smoothing, 0.25)
            res = m.forward_images(px, labels)
            ref = numpy_logits(m, px.astype(np.float64))
            logp = ref - np.log(np.exp(ref).sum(1, keepdims=True))
            target = np.full(ref.shape, 0.25 / ref.shape[1])
            target[np.arange(3), labels] += 0.75
            self.assertAlmostEqual(res.loss, -(target * logp).sum(1).mean(), places=4)
            with self.assertRaises(tf.errors.ArgumentError):
                m.label_smoothing = 1.0
            self.assertEqual(m.label_smoothing, 0.25)

    def test_train_grow_save_open(self):
        rng = np.random.default_rng(0)
        with tf.Model.vision(tf.VisionParams(**SMALL), init_method_std=0.02) as m, \
                tf.Optimizer(m, lr=3e-3, weight_decay=0.0) as opt:
            px = rng.uniform(-1, 1, (8, 8, 8)).astype(np.float32)
            lab = np.arange(8) % 3
            first = m.forward_images(px, lab).loss
            for _ in range(30):
                m.forward_images(px, lab, logits=False)
                m.backward()
                opt.step()
            self.assertLess(m.forward_images(px, lab).loss, first)
            before = m.forward_images(px).logits
            m.grow(qkv_slot_num=8, optimizer=opt)
            self.assertEqual(m.vision_params.qkv_slot_num, 8)
            np.testing.assert_allclose(m.forward_images(px).logits, before, rtol=1e-5,
                                       atol=1e-6)
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "v.safetensors")
                m.save(path, opt)
                with tf.Model.open(path) as o:
                    self.assertTrue(o.is_vision)
                    np.testing.assert_array_equal(o.forward_images(px).logits,
                                                  m.forward_images(px).logits)

    def test_task_checks(self):
        with tf.Model.vision(**SMALL) as vm, tf.Model(vocab_size=16, seq_length=8) as lm:
            self.assertFalse(lm.is_vision)
            with self.assertRaises(tf.errors.StateError):
                vm.forward([[1, 2, 3]])
            with self.assertRaises(tf.errors.StateError):
                lm.vision_params


if __name__ == "__main__":
    unittest.main()
