"""What a data-parallel host uses from Python: the gradient buffer as a
numpy view, the readiness callback, the checksum.  (Training across
processes with mpi4py is tests/mpi_test.sh's.)"""

import unittest

import numpy as np

import helpers  # noqa: F401  (puts this tree's package first on sys.path)

import tokenformer as tf


def small_model(seed=1):
    return tf.Model(num_layers=2, hidden_size=16, num_attention_heads=2, qkv_slot_num=6,
                    proj_slot_num=5, ffn_slot_num=10, vocab_size=32, seq_length=8, seed=seed)


def batch(seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 32, (2, 8)), rng.integers(0, 32, (2, 8))


class GradBufferTest(unittest.TestCase):
    def test_view_is_the_table_in_order(self):
        with small_model() as m:
            buf = m.grad_buffer()
            self.assertEqual((buf.dtype, buf.shape), (np.float32, (m.num_params,)))
            self.assertTrue(buf.flags.writeable)
            self.assertFalse(buf.any())
            m.forward(*batch(1), logits=False)
            m.backward()
            flat = np.concatenate([m.get_grad(n).reshape(-1) for n in m.tensor_names()])
            np.testing.assert_array_equal(buf, flat)
            # writes in place are the model's gradients
            buf *= 2
            np.testing.assert_array_equal(m.get_grad(m.tensor_names()[0]).reshape(-1),
                                          2 * flat[:m.get_grad(m.tensor_names()[0]).size])
            with tf.Optimizer(m, lr=1e-2) as opt:
                opt.step()
                self.assertFalse(buf.any())  # the step zeroed it

    def test_in_place_sum_equals_set_grad(self):
        a, b, peer = small_model(4), small_model(4), small_model(4)
        oa, ob = tf.Optimizer(a, lr=1e-2), tf.Optimizer(b, lr=1e-2)
        a.forward(*batch(1), logits=False)
        a.backward()
        peer.forward(*batch(2), logits=False)
        peer.backward()
        buf = a.grad_buffer()
        buf += peer.grad_buffer()
        off = 0
        for name in b.tensor_names():
            shape = b.tensor_shape(name)
            n = int(np.prod(shape))
            b.set_grad(name, buf[off:off + n].reshape(shape))
            off += n
        oa.step()
        ob.step()
        self.assertEqual(a.checksum(oa), b.checksum(ob))
        for m in (peer, a, b):
            m.close()

    def test_buffer_after_growth(self):
        with small_model() as m:
            m.forward(*batch(1), logits=False)
            m.backward()
            before = m.get_grad("layers.1.mlp.key_param_tokens")
            m.grow(ffn_slot_num=14)
            buf = m.grad_buffer()
            self.assertEqual(buf.size, m.num_params)
            g = m.get_grad("layers.1.mlp.key_param_tokens")
            np.testing.assert_array_equal(g[:10], before)
            self.assertFalse(g[10:].any())


class ReadyCallbackTest(unittest.TestCase):
    def test_ranges_cover_the_buffer_once_when_final(self):
        with small_model() as m:
            buf = m.grad_buffer()
            seen = []
            m.set_grad_ready_callback(
                lambda off, n: seen.append((off, n, buf[off:off + n].copy())))
            m.forward(*batch(1), logits=False)
            m.backward()
            self.assertEqual(len(seen), m.num_layers + 2)
            end = buf.size
            for off, n, snap in seen:
                self.assertEqual(off + n, end)
                np.testing.assert_array_equal(buf[off:off + n], snap)
                end = off
            self.assertEqual(end, 0)
            m.set_grad_ready_callback(None)
            del seen[:]
            m.forward(*batch(2), logits=False)
            m.backward()
            self.assertEqual(seen, [])

    def test_exception_in_callback_is_raised_by_backward(self):
        with small_model() as m:
            calls = []

            def boom(off, n):
                calls.append(off)
                raise KeyError("from the callback")
            m.set_grad_ready_callback(boom)
            m.forward(*batch(1), logits=False)
            with self.assertRaises(KeyError):
                m.backward()
            self.assertEqual(len(calls), 1)  # the later ranges were not reported
            with self.assertRaises(TypeError):
                m.set_grad_ready_callback(3)  # type: ignore[arg-type]


class ChecksumTest(unittest.TestCase):
    def test_equal_twins_differ_after_a_step(self):
        a, b = small_model(7), small_model(7)
        oa, ob = tf.Optimizer(a), tf.Optimizer(b)
        self.assertEqual(a.checksum(), b.checksum())
        self.assertEqual(a.checksum(oa), b.checksum(ob))
        self.assertNotEqual(a.checksum(), small_model(8).checksum())
        a.forward(*batch(1), logits=False)
        a.backward()
        oa.step()
        self.assertNotEqual(a.checksum(), b.checksum())
        with self.assertRaises(tf.ArgumentError):
            a.checksum(ob)
        for x in (oa, ob, a, b):
            x.close()


if __name__ == "__main__":
    unittest.main()
