"""Tests of the tokenformer Python bindings.

    /usr/bin/python3 -m unittest discover -s bindings/python/tests -v

Uses the package of this source tree and the library it finds (build/, or
$TOKENFORMER_LIBRARY).  The golden fixtures are tests/data/*.safetensors,
read here with a reader of our own (helpers.SafeTensors).
"""

import ctypes
import gc
import os
import pickle
import re
import shutil
import tempfile
import unittest
import weakref

import numpy as np

import helpers
from helpers import TOL_GRAD, TOL_OUT, SafeTensors, rel_err

import tokenformer as tf
from tokenformer import _lib

HAVE_DECODER = tf.have("tf_decoder_create") and tf.have("tf_sample")
NO_DECODER = ("the loaded library (%s) does not export the inference API yet "
              "(missing: %s)" % (tf.library_path, ", ".join(tf.missing_symbols)))


def small_model(**kw):
    """A model small enough for thousands of create/free cycles."""
    p = dict(num_layers=1, hidden_size=16, num_attention_heads=2, qkv_slot_num=8,
             proj_slot_num=8, ffn_slot_num=16, vocab_size=256, seq_length=16, seed=3)
    p.update(kw)
    return tf.Model(**p)


def tokens_targets(B, T, V=256, seed=0):
    rng = np.random.default_rng(seed)
    seq = rng.integers(0, V, size=(B, T + 1), dtype=np.int32)
    return np.ascontiguousarray(seq[:, :-1]), np.ascontiguousarray(seq[:, 1:])


# ---------------------------------------------------------------------------
class TestFixtures(unittest.TestCase):
    """Every golden fixture of tests/data matches through the bindings."""

    def test_fixtures_present(self):
        kinds = sorted(SafeTensors(p).meta("kind") for p in helpers.fixtures())
        self.assertIn("pattention", kinds)
        self.assertIn("model", kinds)

    def test_pattention_fixtures(self):
        paths = helpers.fixtures("pattention")
        self.assertTrue(paths)
        for path in paths:
            with self.subTest(fixture=os.path.basename(path)):
                st = SafeTensors(path)
                K, V = st["key_param_tokens"], st["value_param_tokens"]
                X, dY = st["input"], st["grad_output"]
                with tf.Pattention(n=K.shape[0], d_in=K.shape[1], d_out=V.shape[1],
                                   norm=st.meta("norm_activation_type"),
                                   tau=st.meta_num("tau")) as s:
                    s.keys = K
                    s.values = V
                    np.testing.assert_array_equal(s.keys, K)
                    Y = s.forward(X)
                    dX = s.backward(X, dY)
                    self.assertEqual(Y.shape, st["output"].shape)
                    self.assertLessEqual(rel_err(Y, st["output"]), TOL_OUT)
                    self.assertLessEqual(rel_err(dX, st["grad_input"]), TOL_GRAD)
                    self.assertLessEqual(rel_err(s.key_grad, st["grad_key_param_tokens"]),
                                         TOL_GRAD)
                    self.assertLessEqual(rel_err(s.value_grad, st["grad_value_param_tokens"]),
                                         TOL_GRAD)

    def _fixture_optimizer(self, model, st):
        return tf.Optimizer(model, lr=st.meta_num("lr"), min_lr=0.0,
                            beta1=st.meta_num("beta1"), beta2=st.meta_num("beta2"),
                            eps=st.meta_num("eps"), weight_decay=st.meta_num("weight_decay"),
                            clip_grad=st.meta_num("clip_grad"))

    def test_model_fixtures(self):
        paths = helpers.fixtures("model")
        self.assertTrue(paths)
        for path in paths:
            with self.subTest(fixture=os.path.basename(path)):
                st = SafeTensors(path)
                with tf.Model.open(path) as m:
                    r = m.forward(st["tokens"], st["targets"])
                    self.assertEqual(r.logits.shape, st["logits"].shape)
                    self.assertLessEqual(rel_err(r.logits, st["logits"]), TOL_OUT)
                    self.assertLessEqual(rel_err([r.loss], st["loss"]), TOL_OUT)
                    m.backward()
                    names = m.tensor_names()
                    for name in names:
                        self.assertLessEqual(rel_err(m.get_grad(name), st["grad." + name]),
                                             TOL_GRAD, name)
                    if "step1.embed.weight" not in st:
                        continue
                    # one optimizer step from our own gradients (end to end)
                    with self._fixture_optimizer(m, st) as opt:
                        gn = opt.step()
                        self.assertLessEqual(rel_err([gn], st["grad_norm"]), TOL_GRAD)
                        lr = st.meta_num("lr")
                        for name in names:
                            g = st["grad." + name]
                            mask = np.abs(g) >= 1e-5
                            err = np.abs(m.get_tensor(name) - st["step1." + name])[mask]
                            self.assertLessEqual(float(err.max(initial=0.0)) / lr, 1e-2, name)
                # the optimizer alone, from the stored gradients (set_grad)
                with tf.Model.open(path) as m, self._fixture_optimizer(m, st) as opt:
                    for name in m.tensor_names():
                        m.set_grad(name, st["grad." + name])
                    opt.step()
                    for name in m.tensor_names():
                        self.assertLessEqual(rel_err(m.get_tensor(name), st["step1." + name]),
                                             1e-5, name)

    def test_model_fixture_from_yaml_config(self):
        # The .yml beside a model fixture builds the same model (via Config).
        for path in helpers.fixtures("model"):
            yml = path[:-len(".safetensors")] + ".yml"
            if not os.path.exists(yml):
                continue
            with self.subTest(config=os.path.basename(yml)):
                st = SafeTensors(path)
                with tf.Model.from_config(yml) as m:
                    for name in m.tensor_names():
                        m.set_tensor(name, st[name])
                    r = m.forward(st["tokens"], st["targets"])
                    self.assertLessEqual(rel_err(r.logits, st["logits"]), TOL_OUT)

    def test_grow_fixtures(self):
        paths = helpers.fixtures("grow")
        self.assertTrue(paths)
        for path in paths:
            with self.subTest(fixture=os.path.basename(path)):
                st = SafeTensors(path)
                tok, tgt = st["tokens"], st["targets"]
                with tf.Model.open(path) as m:
                    base = m.forward(tok, tgt)
                self.assertLessEqual(rel_err(base.logits, st["logits_base"]), TOL_OUT)
                self.assertLessEqual(rel_err([base.loss], st["loss_base"]), TOL_OUT)
                grown = {}
                for policy in ("follow_n", "pinned"):
                    with tf.Model.open(path) as m:
                        m.grow(int(st.meta_num("grown_qkv_slot_num")),
                               int(st.meta_num("grown_proj_slot_num")),
                               int(st.meta_num("grown_ffn_slot_num")),
                               key_init="zero", scale_policy=policy)
                        for name in m.tensor_names():
                            m.set_tensor(name, st["grown." + name])
                        grown[policy] = m.forward(tok, tgt)
                off = grown["follow_n"]
                self.assertLessEqual(rel_err(off.logits, st["logits_grown_official"]), TOL_OUT)
                self.assertLessEqual(rel_err([off.loss], st["loss_grown_official"]), TOL_OUT)
                pin = grown["pinned"]
                self.assertLessEqual(rel_err(pin.logits, st["logits_grown_pinned"]), TOL_OUT)
                # zero keys + pinned tau: bit-identical to our own base run
                np.testing.assert_array_equal(pin.logits, base.logits)
                self.assertEqual(pin.loss, base.loss)


# ---------------------------------------------------------------------------
class TestErrors(unittest.TestCase):
    """Status codes become the right exception class with the library's message."""

    def assertLibraryMessage(self, exc, *needles):
        msg = str(exc)
        self.assertEqual(msg, tf.last_error())
        for n in needles:
            self.assertIn(str(n), msg)

    def test_hierarchy(self):
        self.assertTrue(issubclass(tf.IOError, OSError))
        self.assertTrue(issubclass(tf.NoMemoryError, MemoryError))
        self.assertTrue(issubclass(tf.RangeError, IndexError))
        self.assertTrue(issubclass(tf.NotFoundError, KeyError))
        self.assertTrue(issubclass(tf.ClosedError, tf.StateError))
        for code in range(1, 11):
            cls = tf.errors.exception_for_status(code)
            self.assertTrue(issubclass(cls, tf.TokenformerError))
            e = cls(code, "message %d" % code)
            self.assertEqual(e.status, code)
            self.assertEqual(str(e), "message %d" % code)
            self.assertEqual(e.status_name, tf.status_name(code))
            e2 = pickle.loads(pickle.dumps(e))
            self.assertIs(type(e2), cls)
            self.assertEqual((e2.status, e2.message), (code, e.message))
        self.assertIsNone(tf.IOError(4, "x").errno)

    def test_status_names(self):
        for s in tf.Status:
            self.assertEqual(tf.status_name(s), "TF_" + s.name)

    def test_shape_error_names_both_sizes(self):
        with tf.Pattention(n=13, d_in=24, d_out=20) as s:
            with self.assertRaises(tf.ShapeError) as cm:
                s.set_keys(np.zeros(5, np.float32))
            self.assertLibraryMessage(cm.exception, "5", "312")
            self.assertEqual(cm.exception.status, tf.Status.ERR_SHAPE)
            self.assertEqual(s.errmsg(), str(cm.exception))
            self.assertIsInstance(cm.exception, ValueError)
        with small_model() as m:
            with self.assertRaises(tf.ShapeError) as cm:
                m.set_tensor("embed.weight", np.zeros(7))
            self.assertLibraryMessage(cm.exception, "embed.weight", "7", 256 * 16)

    def test_not_found(self):
        with small_model() as m:
            with self.assertRaises(tf.NotFoundError) as cm:
                m.get_tensor("no.such.tensor")
            self.assertLibraryMessage(cm.exception, "no.such.tensor")
            self.assertIsInstance(cm.exception, KeyError)
            self.assertEqual(m.errmsg(), str(cm.exception))

    def test_range(self):
        with small_model() as m:
            with self.assertRaises(tf.RangeError) as cm:
                m.forward(np.array([[1, 2, 300]], np.int32))
            self.assertLibraryMessage(cm.exception, "300")
            with self.assertRaises(tf.RangeError):
                m.forward(np.zeros((1, 17), np.int32))  # T > seq_length
            with self.assertRaises(tf.RangeError):
                m.pattention(5, "ffn")

    def test_state(self):
        with small_model() as m:
            with self.assertRaises(tf.StateError) as cm:
                m.backward()
            self.assertLibraryMessage(cm.exception, "tf_model_backward")

    def test_argument(self):
        with self.assertRaises(tf.ArgumentError) as cm:
            tf.set_num_threads(0)
        self.assertLibraryMessage(cm.exception)
        with tf.Pattention(n=4, d_in=4, d_out=4) as s:
            with self.assertRaises(tf.ArgumentError):
                s.set_tau(-1.0)
            with self.assertRaises(tf.ArgumentError):
                s.grow(2)  # smaller
        with self.assertRaises(tf.ArgumentError):
            tf.Pattention(n=0)

    def test_io_and_format(self):
        d = tempfile.mkdtemp()
        try:
            missing = os.path.join(d, "missing.safetensors")
            with self.assertRaises(tf.IOError) as cm:
                tf.Model.open(missing)
            self.assertIsInstance(cm.exception, OSError)
            self.assertLibraryMessage(cm.exception, "missing.safetensors")
            junk = os.path.join(d, "junk.safetensors")
            with open(junk, "wb") as f:
                f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
            with self.assertRaises(tf.FormatError) as cm:
                tf.Model.open(junk)
            self.assertLibraryMessage(cm.exception)
        finally:
            shutil.rmtree(d)

    def test_config_error_names_key_and_line(self):
        with self.assertRaises(tf.ConfigError) as cm:
            with tf.Config.parse('{\n  "num_layers": 2,\n  "hidden_size": "wide"\n}\n') as c:
                c.model_params()
        self.assertLibraryMessage(cm.exception, "hidden_size", "3")

    def test_nonfinite(self):
        with small_model() as m:
            w = m.get_tensor("embed.weight")
            w[:] = np.nan
            m.set_tensor("embed.weight", w)
            tok, tgt = tokens_targets(1, 4)
            with self.assertRaises(tf.NonFiniteError) as cm:
                m.forward(tok, tgt)
            self.assertLibraryMessage(cm.exception)

    def test_handle_message_not_stale(self):
        # A failure recorded elsewhere must not be reported with an older
        # message kept on the handle.
        with small_model() as m:
            with self.assertRaises(tf.NotFoundError):
                m.get_tensor("nope")
            with self.assertRaises(tf.ArgumentError) as cm:
                tf.set_num_threads(-3)
            self.assertNotIn("nope", str(cm.exception))

    def test_params_struct_checks(self):
        p = tf.ModelParams(hidden_size=32, norm="softmax")
        self.assertEqual(p.hidden_size, 32)
        self.assertEqual(p.norm, tf.Norm.SOFTMAX)
        self.assertEqual(p.struct_size, ctypes.sizeof(tf.ModelParams))
        with self.assertRaises(AttributeError):
            p.hidden_sise = 3
        with self.assertRaises(AttributeError):
            p.struct_size = 3
        with self.assertRaises(ValueError):
            p.norm = "cosine"

        # a mirror with fields the library does not know (bindings newer
        # than the library) is refused at import
        class Wrong(ctypes.Structure):
            _fields_ = [("struct_size", ctypes.c_size_t), ("x", ctypes.c_ubyte * 4096)]

        with self.assertRaises(ImportError) as cm:
            _lib._check_struct("tf_model_params_init", Wrong)
        self.assertIn("older than these bindings", str(cm.exception))


# ---------------------------------------------------------------------------
class TestLifetime(unittest.TestCase):
    """close(), context managers, __del__, ownership, leaks."""

    def test_use_after_close_raises(self):
        s = tf.Pattention(n=4, d_in=4, d_out=4)
        s.close()
        s.close()  # idempotent
        self.assertTrue(s.closed)
        for call in (lambda: s.n, lambda: s.forward(np.zeros((1, 4))), lambda: s.keys,
                     lambda: s.grow(8), s.zero_grad):
            with self.assertRaises(tf.ClosedError):
                call()
        m = small_model()
        opt = tf.Optimizer(m)
        m.close()
        with self.assertRaises(tf.ClosedError):
            m.forward(np.zeros((1, 2), np.int32))
        with self.assertRaises(tf.ClosedError) as cm:
            opt.step()
        self.assertIn("Model was closed", str(cm.exception))
        with self.assertRaises(tf.ClosedError):
            tf.Optimizer(m)
        c = tf.Config.parse("{}")
        c.close()
        with self.assertRaises(tf.ClosedError):
            c.has("x")
        ds = tf.Dataset.from_bytes(b"hello world")
        ds.close()
        with self.assertRaises(tf.ClosedError):
            ds.num_tokens()
        self.assertIsInstance(tf.ClosedError("x"), ValueError)

    def test_context_managers_free(self):
        with tf.Pattention(n=4, d_in=4, d_out=4) as s:
            self.assertFalse(s.closed)
        self.assertTrue(s.closed)
        with small_model() as m, tf.Optimizer(m) as opt:
            pass
        self.assertTrue(m.closed)
        self.assertTrue(opt.closed)
        with tf.Config.parse("{}") as c:
            pass
        self.assertTrue(c.closed)
        with tf.Dataset.from_bytes(b"abcdefgh") as ds:
            pass
        self.assertTrue(ds.closed)
        with self.assertRaises(tf.ClosedError):
            with s:
                pass

    def test_borrowed_set_keeps_model_alive(self):
        m = small_model()
        alive = weakref.ref(m)
        s = m.pattention(0, "ffn")
        self.assertTrue(s.borrowed)
        self.assertIs(s.model, m)
        n = s.n
        del m
        gc.collect()
        self.assertIsNotNone(alive(), "the borrowed set must keep its model alive")
        self.assertEqual(s.n, n)
        Y = s.forward(np.ones((3, 16), np.float32))
        self.assertEqual(Y.shape, (3, 16))
        del s, Y
        gc.collect()
        self.assertIsNone(alive(), "the model must be freed once nothing refers to it")

    def test_borrowed_close_does_not_free(self):
        with small_model() as m:
            s = m.pattention(0, tf.SetKind.QUERY)
            s.close()
            with self.assertRaises(tf.ClosedError):
                s.n
            s2 = m.pattention(0, "query")  # the set itself is still there
            self.assertEqual(s2.n, 8)
            tok, tgt = tokens_targets(1, 4)
            m.forward(tok, tgt)
            del s2
        with self.assertRaises(tf.ClosedError) as cm:
            m.pattention(0, "key")
        self.assertIn("closed", str(cm.exception))

    def test_borrowed_grow_updates_model(self):
        with small_model() as m:
            m.pattention(0, "ffn").grow(24)
            self.assertEqual(m.params.ffn_slot_num, 24)
            self.assertEqual(m.tensor_shape("layers.0.mlp.key_param_tokens"), (24, 16))

    def test_optimizer_keeps_model_alive(self):
        m = small_model()
        alive = weakref.ref(m)
        opt = tf.Optimizer(m)
        del m
        gc.collect()
        self.assertIsNotNone(alive())
        self.assertIs(opt.model, alive())
        del opt
        gc.collect()
        self.assertIsNone(alive())

    def _rss_growth(self, cycle, warmup=500, n=10000):
        for _ in range(warmup):
            cycle()
        gc.collect()
        before = helpers.rss_bytes()
        for _ in range(n):
            cycle()
        gc.collect()
        return helpers.rss_bytes() - before

    def test_no_leak_pattention(self):
        X = np.ones((2, 8), np.float32)

        def cycle():
            with tf.Pattention(n=16, d_in=8, d_out=8) as s:
                s.forward(X)
            t = tf.Pattention(n=16, d_in=8, d_out=8)  # freed by __del__
            del t
        grown = self._rss_growth(cycle)
        # leaking one set per cycle would be several MB
        self.assertLess(grown, 1 << 20, "RSS grew by %d bytes over 10,000 cycles" % grown)

    def test_no_leak_model(self):
        tok = np.zeros((1, 4), np.int32)

        def cycle():
            with small_model() as m:
                m.forward(tok)
        grown = self._rss_growth(cycle, warmup=300)
        self.assertLess(grown, 1 << 20, "RSS grew by %d bytes over 10,000 cycles" % grown)

    @unittest.skipUnless(HAVE_DECODER, NO_DECODER)
    def test_no_leak_decoder(self):
        tok = np.array([1, 2, 3], np.int32)
        with small_model() as m:
            def cycle():
                with tf.Decoder(m) as d:
                    d.prefill(tok)
            grown = self._rss_growth(cycle, warmup=300)
        self.assertLess(grown, 1 << 20, "RSS grew by %d bytes over 10,000 cycles" % grown)


# ---------------------------------------------------------------------------
class TestRuntime(unittest.TestCase):

    def test_version_matches_header(self):
        self.assertEqual(tf.version_string(), tf.__version__)
        if os.path.exists(helpers.HEADER):
            with open(helpers.HEADER) as f:
                text = f.read()
            parts = [int(re.search(r"#define TF_VERSION_%s (\d+)" % k, text).group(1))
                     for k in ("MAJOR", "MINOR", "PATCH")]
            self.assertEqual(tf.version_number(), parts[0] * 1000000 + parts[1] * 1000 + parts[2])

    def test_library_lookup(self):
        import subprocess
        import sys
        code = "import tokenformer as tf; print(tf.library_path)"
        env = dict(os.environ, PYTHONPATH=helpers.BINDINGS,
                   TOKENFORMER_LIBRARY=os.path.realpath(tf.library_path))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip(), env["TOKENFORMER_LIBRARY"])
        env["TOKENFORMER_LIBRARY"] = "/nonexistent/libtokenformer.so.0"
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=60)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("ImportError", out.stderr)
        self.assertIn("TOKENFORMER_LIBRARY", out.stderr)

    def _info_in_child(self, **env_set):
        """tf.get_info() of a fresh process (the kernel set is chosen once
        per process), with env_set added and the arch switches removed."""
        import json
        import subprocess
        import sys
        env = dict(os.environ, PYTHONPATH=helpers.BINDINGS,
                   TOKENFORMER_LIBRARY=os.path.realpath(tf.library_path))
        for k in ("TF_BLIS_ARCH", "BLIS_ARCH_TYPE", "TF_ARCH"):
            env.pop(k, None)
        env.update(env_set)
        code = "import json, tokenformer as tf; print(json.dumps(tf.get_info()))"
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def test_kernel_set_choice(self):
        info = self._info_in_child()
        self.assertEqual(info["blis_arch_source"], "auto")
        if info["cpu_avx2"]:  # never the 5x slower generic kernels
            self.assertFalse(info["blis_arch_generic"], info)
        if info["cpu_avx512"]:  # BLIS 0.9 may not know the CPU: the library picks
            with open("/proc/cpuinfo") as f:
                amd = "AuthenticAMD" in f.read()
            self.assertEqual(info["blis_arch"], "zen3" if amd else "skx")
        if info["cpu_avx2"]:
            forced = self._info_in_child(TF_BLIS_ARCH="haswell")
            self.assertEqual((forced["blis_arch"], forced["blis_arch_source"]),
                             ("haswell", "TF_BLIS_ARCH"))

    def test_element_kernel_arch_choice(self):
        """TF_ARCH picks the element-wise kernels' set, never above the CPU's."""
        info = self._info_in_child()
        best = "avx512" if info["cpu_avx512"] else "avx2" if info["cpu_avx2"] else "generic"
        self.assertEqual((info["kernel_arch"], info["kernel_arch_source"]), (best, "auto"))
        generic = self._info_in_child(TF_ARCH="generic")
        self.assertEqual((generic["kernel_arch"], generic["kernel_arch_source"]),
                         ("generic", "TF_ARCH"))
        avx2 = self._info_in_child(TF_ARCH="AVX2")
        if info["cpu_avx2"]:
            self.assertEqual((avx2["kernel_arch"], avx2["kernel_arch_source"]),
                             ("avx2", "TF_ARCH"))
        else:
            self.assertEqual(avx2["kernel_arch"], "generic")
            self.assertIn("lowered", avx2["kernel_arch_source"])
        bogus = self._info_in_child(TF_ARCH="sse9")
        self.assertEqual(bogus["kernel_arch"], best)
        self.assertIn("TF_ARCH ignored", bogus["kernel_arch_source"])

    def test_info_and_threads(self):
        info = tf.get_info()
        self.assertEqual(info["version_string"], tf.version_string())
        self.assertTrue(info["blis_arch"])
        self.assertGreaterEqual(info["num_threads"], 1)
        n = tf.get_num_threads()
        try:
            tf.set_num_threads(1)
            self.assertEqual(tf.get_num_threads(), 1)
        finally:
            tf.set_num_threads(n)
        tf.init()  # the runtime is up: same choice again is fine

    def test_norm_names(self):
        self.assertEqual(tf.norm_type_name("softmax"), "softmax")
        self.assertEqual(tf.norm_type_name(0), "l2_norm_gelu")
        self.assertEqual(tf.Norm.coerce("GELU_L2_NORM"), tf.Norm.GELU_L2_NORM)

    def test_all_header_functions_bound(self):
        if not os.path.exists(helpers.HEADER):
            self.skipTest("no header in this tree")
        with open(helpers.HEADER) as f:
            declared = set(re.findall(r"^TF_API\s[^;(]*?\b(tf_\w+)\s*\(", f.read(), re.M))
        self.assertTrue(declared)
        self.assertEqual(declared - set(_lib.PROTOTYPES), set(),
                         "header functions without a binding")
        self.assertEqual(set(_lib.PROTOTYPES) - declared, set(),
                         "bindings of functions not in the header")


# ---------------------------------------------------------------------------
class TestPattention(unittest.TestCase):

    def test_arrays_in_and_out(self):
        with tf.Pattention(n=6, d_in=5, d_out=3, seed=7) as s:
            self.assertEqual((s.n, s.d_in, s.d_out), (6, 5, 3))
            self.assertEqual(s.scale_policy, tf.ScalePolicy.FOLLOW_N)
            X = np.random.default_rng(1).standard_normal((4, 10))
            C = np.ascontiguousarray(X, np.float32)
            self.assertIs(_lib.as_f32(C), C)  # passed to C as it is, no copy
            ids = np.zeros(3, np.int32)
            self.assertIs(_lib.as_i32(ids), ids)
            Xs = X[:, ::2]  # not contiguous, float64: converted
            Y1 = s.forward(Xs)
            Y2 = s.forward(np.ascontiguousarray(Xs, np.float32))
            np.testing.assert_array_equal(Y1, Y2)
            out = np.empty((4, 3), np.float32)
            r = s.forward(Xs, out=out)
            self.assertIs(r, out)
            np.testing.assert_array_equal(out, Y1)
            with self.assertRaises(tf.ShapeError):
                s.forward(np.zeros((4, 4)))
            with self.assertRaises(tf.ArgumentError):
                s.forward(Xs, out=np.empty((4, 3), np.float64))
            s.tau = 2.5
            self.assertEqual(s.tau, 2.5)
            self.assertEqual(s.scale_policy, tf.ScalePolicy.PINNED)

    def test_backward_accumulates_and_grow(self):
        with tf.Pattention(n=6, d_in=5, d_out=3) as s:
            X = np.random.default_rng(2).standard_normal((4, 5)).astype(np.float32)
            dY = np.ones((4, 3), np.float32)
            s.forward(X)
            self.assertIsNone(s.backward(X, dY, want_dX=False))
            g1 = s.value_grad
            s.forward(X)
            s.backward(X, dY)
            np.testing.assert_allclose(s.value_grad, 2 * g1, rtol=1e-6)
            s.zero_grad()
            self.assertFalse(s.value_grad.any())
            K = s.keys
            s.grow(9, key_init="zero")
            self.assertEqual(s.n, 9)
            np.testing.assert_array_equal(s.keys[:6], K)
            self.assertFalse(s.keys[6:].any())


# ---------------------------------------------------------------------------
class TestModel(unittest.TestCase):

    def test_params_and_tensors(self):
        with small_model() as m:
            p = m.params
            self.assertEqual((p.num_layers, p.hidden_size, p.qkv_slot_num), (1, 16, 8))
            names = m.tensor_names()
            self.assertEqual(names[0], "embed.weight")
            self.assertEqual(len(names), m.num_tensors)
            self.assertEqual(sum(int(np.prod(m.tensor_shape(n))) for n in names), m.num_params)
            self.assertEqual(m.tensor_shape("final_norm.bias"), (16,))
            sd = m.state_dict()
            sd["final_norm.bias"][:] = 0.5
            m.load_state_dict(sd)
            np.testing.assert_array_equal(m.get_tensor("final_norm.bias"), 0.5)

    def test_forward_backward(self):
        with small_model() as m:
            tok, tgt = tokens_targets(2, 8)
            r = m.forward(tok, tgt)
            self.assertEqual(r.logits.shape, (2, 8, 256))
            self.assertAlmostEqual(r.loss, np.log(256), delta=0.5)
            self.assertEqual(m.loss(tok, tgt), r.loss)
            self.assertIsNone(m.forward(tok).loss)
            np.testing.assert_array_equal(m.logits(tok), r.logits)
            m.forward(tok.astype(np.int64), tgt)  # converted
            m.backward()
            g = m.get_grad("embed.weight")
            self.assertTrue(np.abs(g).sum() > 0)
            m.zero_grad()
            self.assertFalse(m.get_grad("embed.weight").any())

    def test_training_lowers_loss_and_grow_with_optimizer(self):
        text = b"the quick brown fox jumps over the lazy dog. " * 20
        with small_model(seed=5) as m, tf.Dataset.from_bytes(text) as ds, \
                tf.Optimizer(m, lr=3e-3, weight_decay=0.0) as opt:
            first = None
            for i in range(30):
                tok, tgt = ds.sample("train", 1, i, 4, 12)
                loss = m.forward(tok, tgt, logits=False).loss
                first = loss if first is None else first
                m.backward()
                opt.step()
            self.assertLess(loss, first)
            self.assertEqual(opt.step_count, 30)
            tok, tgt = ds.batch("train", 0, 4, 12)
            before = m.forward(tok, tgt).logits
            m.grow(12, 12, 24, optimizer=opt, key_init="zero", scale_policy="pinned")
            self.assertEqual(m.params.ffn_slot_num, 24)
            np.testing.assert_array_equal(m.forward(tok, tgt).logits, before)
            mom = opt.get_moment("layers.0.mlp.key_param_tokens", 0)
            self.assertEqual(mom.shape, (24, 16))
            self.assertFalse(mom[16:].any())
            m.backward()
            opt.step()
            self.assertEqual(opt.step_count, 31)
            with small_model() as other:
                with self.assertRaises(tf.ArgumentError):
                    other.grow(16, optimizer=opt)

    def test_bfloat16_inference(self):
        path = os.path.join(helpers.FIXTURES, "model_tiny.safetensors")
        tok = np.arange(32, dtype=np.int32).reshape(2, 16) * 7 % 256
        with tf.Model.open(path) as m32, tf.Model.open(path, weights="bf16") as m16:
            self.assertEqual(m16.weights_dtype, tf.DType.BF16)
            self.assertEqual(m32.weights_dtype, tf.DType.F32)
            a, b = m32.forward(tok).logits, m16.forward(tok).logits
            self.assertLess(rel_err(b, a), 1e-2)
            self.assertGreater(rel_err(b, a), 0.0)
            m32.make_inference(weights="bf16")  # in place: the same weights as the open's
            np.testing.assert_array_equal(m32.forward(tok).logits, b)
            w = m16.get_tensor("embed.weight")
            np.testing.assert_array_equal(w.view(np.uint32) & 0xFFFF, 0)  # widened bfloat16
            with self.assertRaises(tf.StateError):
                m16.backward()
            with self.assertRaises(tf.StateError):
                tf.Optimizer(m16)
            with self.assertRaises(tf.StateError):
                m16.make_inference(weights="f32")
        self.assertIn(tf.get_info()["bf16_kernel"], ("plain", "avx2", "avx512", "avx512_bf16"))

    def test_checkpoints(self):
        d = tempfile.mkdtemp()
        try:
            path = os.path.join(d, "ck.safetensors")
            tok, tgt = tokens_targets(1, 8)
            with small_model(seed=11) as m, tf.Optimizer(m) as opt:
                m.forward(tok, tgt)
                m.backward()
                opt.step()
                m.save(path, opt)
                ref = m.forward(tok).logits
            with tf.Model.open(path) as m2:
                np.testing.assert_array_equal(m2.forward(tok).logits, ref)
            with small_model(seed=99) as m3, tf.Optimizer(m3) as opt3:
                m3.load(path, opt3)
                self.assertEqual(opt3.step_count, 1)
                np.testing.assert_array_equal(m3.forward(tok).logits, ref)
            with small_model(seed=99, ffn_slot_num=32) as m4:
                m4.load_grown(path, key_init="zero", scale_policy="pinned")
                np.testing.assert_array_equal(m4.forward(tok).logits, ref)
            with small_model(hidden_size=32) as m5:
                with self.assertRaises(tf.ShapeError):
                    m5.load(path)
        finally:
            shutil.rmtree(d)

    def test_growth_recipe_and_checkpoint_info(self):
        d = tempfile.mkdtemp()
        try:
            path = os.path.join(d, "mid.safetensors")
            r = tf.GrowParams.recipe(tau_ramp_steps=4, lr=2e-3)
            self.assertEqual(r.lr_schedule, tf.LrRestart.RESTART)
            self.assertEqual(r.value_std_scale, 0.05)
            self.assertEqual(tf.GrowParams().lr_schedule, tf.LrRestart.KEEP)
            tok, tgt = tokens_targets(2, 8)
            with small_model(seed=4) as m, \
                    tf.Optimizer(m, lr=1e-3, min_lr=1e-4, decay_steps=40) as opt:
                for _ in range(3):
                    m.forward(tok, tgt)
                    m.backward()
                    opt.step()
                q = m.pattention(0, "query")
                tau0 = q.tau
                with self.assertRaises(tf.ArgumentError):  # a ramp needs the optimizer
                    m.grow(12, params=r)
                m.grow(12, optimizer=opt, params=r)
                self.assertEqual(q.tau, tau0)  # the function is kept at the growth
                p = opt.params
                self.assertEqual(p.lr_restart, tf.LrRestart.RESTART)
                self.assertEqual((p.lr_restart_step, p.lr_restart_lr, p.lr_restart_decay_steps),
                                 (3, 2e-3, 37))
                self.assertEqual(opt.lr_at(4), tf.schedule_lr(p, 4))
                self.assertAlmostEqual(opt.lr_at(4), 1e-5 + (2e-3 - 1e-5) * 0.5 *
                                       (1 + np.cos(np.pi / 37)), places=15)
                m.forward(tok, tgt)
                m.backward()
                opt.step()
                self.assertEqual(q.tau, tau0 + (np.sqrt(12) - tau0) / 4)
                m.save(path, opt)
            info = tf.checkpoint_info(path)
            self.assertEqual(info.optimizer_step, 4)
            self.assertEqual((info.params.qkv_slot_num, info.params.ffn_slot_num), (12, 16))
            with tf.Model(params=info.params) as m2, tf.Optimizer(m2) as opt2:
                m2.load(path, opt2)
                self.assertEqual(opt2.params.lr_restart_step, 3)
                self.assertEqual(m2.pattention(0, "query").tau, tau0 + (np.sqrt(12) - tau0) / 4)
            with small_model() as m3:
                m3.save(path)
            self.assertIsNone(tf.checkpoint_info(path).optimizer_step)
            with open(path, "r+b") as f:
                f.truncate(100)
            with self.assertRaises(tf.FormatError):
                tf.checkpoint_info(path)
        finally:
            shutil.rmtree(d)

    def test_optimizer_params(self):
        with small_model() as m, tf.Optimizer(m, lr=1e-3, warmup_steps=10) as opt:
            self.assertAlmostEqual(opt.lr_at(5), 5e-4)
            # the schedule without an optimizer: the same numbers
            q = tf.OptimizerParams(lr=1e-3, min_lr=1e-4, warmup_steps=10, decay_steps=50)
            opt.params = q
            for t in (0, 1, 10, 11, 30, 50, 60):
                self.assertEqual(tf.schedule_lr(q, t), opt.lr_at(t))
            self.assertEqual(tf.schedule_lr(q, 50), 1e-4)
            with self.assertRaises(TypeError):
                tf.schedule_lr({"lr": 1e-3}, 5)
            opt.set_params(lr=2e-3, warmup_steps=10)
            self.assertEqual(opt.params.lr, 2e-3)
            self.assertEqual(opt.params.warmup_steps, 10)
            p = tf.OptimizerParams(lr=1.0)
            opt.params = p
            self.assertEqual(opt.get_params().warmup_steps, 0)


# ---------------------------------------------------------------------------
class TestConfigDataset(unittest.TestCase):

    def test_config(self):
        yml = os.path.join(helpers.FIXTURES, "model_tiny.yml")
        with tf.Config.load(yml) as c:
            p = c.model_params()
            self.assertEqual((p.num_layers, p.hidden_size, p.qkv_slot_num), (2, 64, 48))
            self.assertEqual(c.get_int("hidden_size"), 64)
            self.assertEqual(c.get_double("layernorm_epsilon"), 1e-5)
            self.assertFalse(c.get_bool("no_weight_tying"))
            self.assertEqual(c.get_string("pos_emb"), "rotary")
            self.assertIn("hidden_size", c)
            self.assertEqual(c.get("nope", int, 7), 7)
            with self.assertRaises(tf.NotFoundError):
                c.get_int("nope")
            with self.assertRaises(tf.ConfigError):
                c.get_int("pos_emb")
            self.assertAlmostEqual(c.optimizer_params().lr, 1e-3)
            self.assertEqual(c.get_double("optimizer.params.betas.1"), 0.95)  # dotted path
            self.assertIn("init_method", c.ignored_keys)
            c.use_keys(["init_method"])
            self.assertNotIn("init_method", c.ignored_keys)
            self.assertEqual(c.suggest_key("train_iter"), "train_iters")
            self.assertIsNone(c.suggest_key("zzz"))

    def test_dataset(self):
        data = bytes(range(256)) * 8
        d = tempfile.mkdtemp()
        try:
            path = os.path.join(d, "data.txt")
            with open(path, "wb") as f:
                f.write(data)
            with tf.Dataset.open(path, "bytes", 256, 0.25) as ds:
                self.assertEqual(ds.num_tokens("train") + ds.num_tokens("val"), len(data))
                a = ds.sample("train", 3, 7, 2, 5)
                b = ds.sample(tf.Split.TRAIN, 3, 7, 2, 5)
                np.testing.assert_array_equal(a[0], b[0])
                tok, tgt = a
                np.testing.assert_array_equal(tok[:, 1:], tgt[:, :-1])
                self.assertGreater(ds.num_batches("val", 2, 5), 0)
                vt, _ = ds.batch("val", 0, 2, 5)
                self.assertEqual(vt.shape, (2, 5))
        finally:
            shutil.rmtree(d)
        with self.assertRaises(tf.RangeError):
            tf.Dataset.from_tokens([1, 2, 999], 256)


# ---------------------------------------------------------------------------
class TestConversions(unittest.TestCase):
    """Arguments that C would receive changed are refused before the call."""

    def test_ids_beyond_int32_refused(self):
        with small_model() as m:
            want = m.forward([[3, 1]]).logits
            for bad in ([[2 ** 32 + 3, 1]], np.array([[2 ** 32 + 3, 1]], np.int64),
                        np.array([[2 ** 32 - 1, 1]], np.uint32), [[-2 ** 31 - 1, 1]],
                        np.array([[3, 2 ** 63]], np.uint64), [[2 ** 70, 1]]):
                with self.subTest(ids=repr(bad)):
                    with self.assertRaises(OverflowError) as cm:
                        m.forward(bad)
                    self.assertIsInstance(cm.exception, tf.ArgumentError)
            # ids that fit are converted from any integer type
            for ok in (np.array([[3, 1]], np.int64), np.array([[3, 1]], np.uint32),
                       np.array([[3, 1]], np.uint8)):
                np.testing.assert_array_equal(m.forward(ok).logits, want)
        with self.assertRaises(tf.ArgumentOverflowError):
            tf.Dataset.from_tokens(np.array([1, 2 ** 32 + 1], np.int64), 256)
        with self.assertRaises(OverflowError):
            tf.tokens_to_bytes([72, 2 ** 32 + 105])

    def test_bool_and_float_ids_refused(self):
        with small_model() as m:
            for bad in (np.array([[True, False]]), [[True, True]], np.array([[1.0, 2.0]])):
                with self.subTest(ids=repr(bad)):
                    with self.assertRaises(TypeError) as cm:
                        m.forward(bad)
                    self.assertIsInstance(cm.exception, tf.ArgumentError)
            with self.assertRaises(TypeError):
                m.forward([[1, 2]], targets=np.array([[False, True]]))
        with self.assertRaises(TypeError):
            tf.Dataset.from_tokens(np.ones(10, bool), 256)
        with self.assertRaises(TypeError):
            tf.Dataset.from_tokens(["a", "b"], 256)

    def test_nul_in_names_and_paths_refused(self):
        d = tempfile.mkdtemp()
        cwd = os.getcwd()
        try:
            os.chdir(d)
            with small_model() as m:
                for path in ("x\0y", b"x\0y"):
                    with self.assertRaises(ValueError) as cm:
                        m.save(path)
                    self.assertIsInstance(cm.exception, tf.ArgumentError)
                self.assertEqual(os.listdir(d), [])  # not written as "x"
                m.save("x")
                with self.assertRaises(ValueError):
                    m.load("x\0y")
                with self.assertRaises(ValueError):
                    tf.Model.open("x\0.safetensors")
                with self.assertRaises(ValueError):
                    m.get_tensor("embed.weight\0junk")  # not embed.weight
                with self.assertRaises(ValueError):
                    m.set_tensor("embed.weight\0", m.get_tensor("embed.weight"))
                with self.assertRaises(TypeError):
                    m.get_tensor(None)
            with open("data.txt", "wb") as f:
                f.write(b"hello world " * 10)
            with self.assertRaises(ValueError):
                tf.Dataset.open("data.txt\0.bin", "bytes", 256)
            with self.assertRaises(ValueError):
                tf.Dataset.open_files(["data.txt", "x\0"], vocab_size=256)
            with self.assertRaises(ValueError):
                tf.Config.load("cfg\0.yml")
            with self.assertRaises(ValueError):
                tf.init("auto\0skx")
        finally:
            os.chdir(cwd)
            shutil.rmtree(d)

    def test_set_tensor_checks_shape(self):
        with small_model() as m:
            w = m.get_tensor("embed.weight")  # [256, 16]
            with self.assertRaises(tf.ShapeError) as cm:
                m.set_tensor("embed.weight", w.T)
            self.assertIn("(16, 256)", str(cm.exception))
            with self.assertRaises(tf.ShapeError):
                m.set_tensor("embed.weight", np.ascontiguousarray(w.reshape(16, 256)))
            with self.assertRaises(tf.ShapeError):
                m.set_grad("embed.weight", w.T)
            np.testing.assert_array_equal(m.get_tensor("embed.weight"), w)
            # the right shape from any layout, or 1-D in C order
            m.set_tensor("embed.weight", np.asfortranarray(w * 2))
            np.testing.assert_array_equal(m.get_tensor("embed.weight"), w * 2)
            m.set_tensor("embed.weight", (w * 3).reshape(-1))
            np.testing.assert_array_equal(m.get_tensor("embed.weight"), w * 3)
        with tf.Pattention(n=6, d_in=6, d_out=4) as s:
            k = np.arange(36, dtype=np.float32).reshape(6, 6)
            s.set_keys(k.T)  # square: the transpose is what is asked for
            np.testing.assert_array_equal(s.get_keys(), k.T)
            with self.assertRaises(tf.ShapeError):
                s.set_values(np.zeros((4, 6), np.float32))

    def test_float32_overflow_refused(self):
        with small_model() as m:
            w = m.get_tensor("embed.weight")
            big = w.astype(np.float64)
            big[3, 5] = 1e300
            with self.assertRaises(OverflowError) as cm:
                m.set_tensor("embed.weight", big)
            self.assertIsInstance(cm.exception, tf.ArgumentError)
            self.assertIn("1e+300", str(cm.exception))
            np.testing.assert_array_equal(m.get_tensor("embed.weight"), w)  # unchanged
            big[3, 5] = -1e39
            with self.assertRaises(OverflowError):
                m.set_grad("embed.weight", big)
            # what float32 holds, and non-finite values given as such, pass
            big[3, 5] = 3e38
            m.set_tensor("embed.weight", big)
            big[3, 5] = np.inf
            m.set_tensor("embed.weight", big)
            self.assertEqual(m.get_tensor("embed.weight")[3, 5], np.inf)
        with self.assertRaises(OverflowError):
            tf.sample(np.array([0.0, 1e300]), tf.sampler_params(temperature=0))
        with self.assertRaises(TypeError):
            tf.sample(np.array([0.0, 1j]), tf.sampler_params(temperature=0))

    def test_errors_pickle(self):
        for e in (tf.ArgumentTypeError("bool ids"), tf.ArgumentOverflowError("big")):
            e2 = pickle.loads(pickle.dumps(e))
            self.assertIs(type(e2), type(e))
            self.assertEqual(e2.message, e.message)
            self.assertEqual(e2.status, tf.Status.ERR_ARGUMENT)


# ---------------------------------------------------------------------------
def write_llmc(path, ids, version):
    """An llm.c token shard: 256 int32 header (magic, version, count), ids."""
    header = np.zeros(256, np.int32)
    header[:3] = (20240520 if version == 1 else 20240801, version, len(ids))
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(np.asarray(ids, np.uint16 if version == 1 else np.uint32).tobytes())


class TestShards(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.train = []
        for k, (n, v) in enumerate(((800, 1), (500, 7), (1200, 7))):
            p = os.path.join(self.dir, "edu_train_%06d.bin" % (k + 1))
            write_llmc(p, np.arange(n) + 10000 * k, v)
            self.train.append(p)
        self.val = os.path.join(self.dir, "edu_val_000000.bin")
        write_llmc(self.val, np.arange(300) + 70000, 7)

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_open_files_and_sources(self):
        with tf.Dataset.open_files(self.train, self.val, vocab_size=128256,
                                   max_resident=1) as ds:
            self.assertEqual(ds.num_tokens("train"), 2500)
            self.assertEqual(ds.num_tokens("val"), 300)
            src = ds.sources("train")
            self.assertEqual([s.path for s in src], self.train)
            self.assertEqual([(s.format, s.version, s.token_bytes) for s in src],
                             [(tf.DataFormat.LLMC, 1, 2), (tf.DataFormat.LLMC, 7, 4),
                              (tf.DataFormat.LLMC, 7, 4)])
            self.assertEqual([s.num_tokens for s in src], [800, 500, 1200])
            self.assertEqual(ds.sources("val")[0].path, self.val)
            # batch i is a pure function of (seed, i), one file per batch
            a = [ds.sample("train", 5, i, 2, 16) for i in range(20)]
            for tok, tgt in a:
                self.assertEqual(len(set((tok // 10000).reshape(-1))), 1)
                np.testing.assert_array_equal(tok[:, 1:], tgt[:, :-1])
            with tf.Dataset.open_files(self.train, [self.val], vocab_size=128256,
                                       max_resident=4) as ds2:
                for i in reversed(range(20)):
                    np.testing.assert_array_equal(ds2.sample("train", 5, i, 2, 16)[0], a[i][0])
            vt, _ = ds.batch("val", 1, 1, 10)
            np.testing.assert_array_equal(vt[0], 70010 + np.arange(10))

    def test_open_glob(self):
        with tf.Dataset.open_glob(self.dir, self.dir, vocab_size=128256) as ds:
            self.assertEqual([s.path for s in ds.sources("train")], self.train)
            self.assertEqual(len(ds.sources("val")), 1)
        pattern = os.path.join(self.dir, "edu_train_*.bin")
        with tf.Dataset.open_glob(pattern, vocab_size=128256, val_fraction=0.2) as ds:
            self.assertEqual(ds.num_tokens("val"), 500)
            last = ds.sources("val")
            self.assertEqual((last[0].path, last[0].num_tokens), (self.train[2], 500))
        with self.assertRaises(tf.NotFoundError):
            tf.Dataset.open_glob(os.path.join(self.dir, "nothing_*.bin"), vocab_size=256)
        with self.assertRaises(tf.ArgumentError):
            tf.Dataset.open_glob(self.dir, self.dir, vocab_size=128256, val_fraction=0.1)

    def test_llama3_shard_detected_and_errors(self):
        with tf.Dataset.open(self.train[1], "auto", 128256) as ds:
            self.assertEqual(ds.num_tokens("train"), 500)  # not 1012 uint16 "tokens"
        # ids out of range: at opening when every file is read then ...
        with self.assertRaises(tf.RangeError) as cm:
            tf.Dataset.open_files(self.train, vocab_size=15000, max_resident=3)
        self.assertIn("edu_train_000003.bin", str(cm.exception))
        # ... else by the batch that reads the file
        with tf.Dataset.open_files(self.train, vocab_size=15000, max_resident=1) as ds:
            ds.batch("train", 0, 1, 10)
            with self.assertRaises(tf.RangeError) as cm:
                ds.batch("train", 799 // 10 + 499 // 10, 1, 10)
            self.assertIn("edu_train_000003.bin", str(cm.exception))
            self.assertEqual(ds.errmsg(), str(cm.exception))
        with open(self.train[0], "r+b") as f:
            f.write(np.int32(20250101).tobytes())
        with self.assertRaises(tf.FormatError) as cm:
            tf.Dataset.open(self.train[0], "auto", 128256)
        self.assertIn("20250101", str(cm.exception))
        p = tf.DatasetParams(vocab_size=5, format="llmc")
        self.assertEqual((p.format, p.max_resident), (tf.DataFormat.LLMC, 2))


# ---------------------------------------------------------------------------
@unittest.skipUnless(HAVE_DECODER, NO_DECODER)
class TestInference(unittest.TestCase):

    def test_tokenizer(self):
        ids = tf.bytes_to_tokens("héllo")
        self.assertEqual(ids.dtype, np.int32)
        self.assertEqual(list(ids), list("héllo".encode()))
        self.assertEqual(tf.tokens_to_bytes(ids), "héllo".encode())
        self.assertEqual(tf.tokens_to_text(list(ids) + [-1]), "héllo")
        self.assertEqual(len(tf.bytes_to_tokens(b"")), 0)
        with self.assertRaises(tf.RangeError) as cm:
            tf.tokens_to_bytes([65, 300])
        self.assertIn("300", str(cm.exception))

    def test_sample(self):
        logits = np.array([0.1, 3.0, 3.0, -1.0], np.float32)
        self.assertEqual(tf.sample(logits, temperature=0)[0], 1)  # ties -> lowest id
        s1 = tf.Sampler(seed=5)
        s2 = tf.Sampler(seed=5)
        a = [s1(logits) for _ in range(20)]
        b = [s2.sample(logits) for _ in range(20)]
        self.assertEqual(a, b)
        self.assertEqual(tf.sample(logits, top_k=1, seed=9)[0], 1)
        with self.assertRaises(tf.ArgumentError):
            tf.sample(logits, temperature=-1.0)

    def test_decoder_matches_forward(self):
        with small_model(seed=4) as m, tf.Decoder(m, batch=2) as dec:
            tok, _ = tokens_targets(2, 6, seed=3)
            full = m.forward(tok).logits
            lg = dec.prefill(tok[:, :4])
            self.assertEqual(dec.position, 4)
            self.assertLessEqual(rel_err(lg, full[:, 3]), 1e-4)
            lg = dec.step(tok[:, 4])
            self.assertLessEqual(rel_err(lg, full[:, 4]), 1e-4)
            np.testing.assert_array_equal(dec.logits, lg)
            dec.reset()
            self.assertEqual(dec.position, 0)
            self.assertIsNone(dec.logits)
            with self.assertRaises(tf.StateError):
                dec.generate(3)

    def test_generate(self):
        with small_model(seed=4) as m, tf.Decoder(m) as dec:
            prompt = tf.bytes_to_tokens("ab")
            dec.prefill(prompt)
            ids = dec.generate(5, temperature=0)
            self.assertEqual(ids.shape, (1, 5))
            # greedy generation equals argmax step by step
            dec.reset()
            lg = dec.prefill(prompt)
            manual = []
            for _ in range(5):
                nxt = int(np.argmax(lg[0]))
                manual.append(nxt)
                lg = dec.step(nxt)
            self.assertEqual(list(ids[0]), manual)
            # streaming callback, stopping early
            dec.reset()
            dec.prefill(prompt)
            seen = []
            ids = dec.generate(10, callback=lambda x: seen.append(int(x[0])) or len(seen) >= 3,
                               temperature=0)
            self.assertEqual(seen, manual[:3])
            self.assertEqual(ids.shape, (1, 3))
            # a stop id
            dec.reset()
            dec.prefill(prompt)
            ids = dec.generate(10, stop_ids=[manual[1]], temperature=0)
            self.assertEqual(list(ids[0][:2]), manual[:2])
            # an exception in the callback propagates
            dec.reset()
            dec.prefill(prompt)

            def boom(_):
                raise KeyError("from the callback")
            with self.assertRaises(KeyError):
                dec.generate(4, callback=boom)
            # up to seq_length only
            dec.reset()
            dec.prefill(np.zeros(14, np.int32))
            self.assertEqual(dec.generate(10, temperature=0).shape, (1, 2))

    def test_score_and_official_sampling(self):
        with small_model(seed=4) as m, tf.Decoder(m, batch=2) as dec:
            tok, tgt = tokens_targets(2, 10, seed=8)
            nll = dec.score(tok, tgt)
            self.assertEqual(dec.position, 10)
            self.assertAlmostEqual(nll / tok.size, m.loss(tok, tgt), delta=1e-5 * nll / tok.size)
            with self.assertRaises(tf.ShapeError):
                dec.score(tok, tgt[:, :4])
        p = tf.official_sampler_params(temperature=0.0, top_k=0, top_p=0.0, seed=3)
        self.assertEqual((p.temperature, p.top_k, p.top_p, p.seed), (0.0, 0, 1.0, 3))
        p = tf.official_sampler_params(top_k=40)  # no temperature: sampling at 1
        self.assertEqual((p.temperature, p.top_k, p.top_p), (1.0, 40, 1.0))
        p = tf.official_sampler_params(temperature=0.8, top_p=0.9)
        self.assertEqual((p.temperature, p.top_k, p.top_p), (0.8, 0, 0.9))
        for bad in ({"top_p": 1.5}, {"top_p": -0.5}, {"temperature": -1.0}, {"top_k": -2}):
            with self.assertRaises(tf.ArgumentError):
                tf.official_sampler_params(**bad)

    def test_decoder_lifetime(self):
        m = small_model()
        alive = weakref.ref(m)
        dec = tf.Decoder(m)
        del m
        gc.collect()
        self.assertIsNotNone(alive())
        dec.prefill([1, 2, 3])
        dec.model.close()
        with self.assertRaises(tf.ClosedError):
            dec.step(4)
        del dec
        gc.collect()
        self.assertIsNone(alive())


if __name__ == "__main__":
    unittest.main()
