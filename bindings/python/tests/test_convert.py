"""The checkpoint converter (tokenformer.convert, tools/convert_checkpoint.py)
on files written by real PyTorch (tests/data/torch, made by
tests/reference/make_torch_checkpoints.py): the converted model's logits,
computed by the library, match the ones PyTorch recorded; hostile pickles
are refused before anything runs; bad checkpoints are refused with the
tensor named and nothing written.  No torch needed."""

import collections
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile

import numpy as np

from helpers import ROOT, SafeTensors

import tokenformer as tf
from tokenformer import convert as tc
from tokenformer import safetensors, torchfile

DATA = os.path.join(ROOT, "tests", "data", "torch")
CONFIG = os.path.join(DATA, "tiny.yml")
TOOL = os.path.join(ROOT, "tools", "convert_checkpoint.py")


def read(path):
    with open(path, "rb") as f:
        return f.read()


MANIFEST = json.loads(read(os.path.join(DATA, "manifest.json")))
TOKENS = np.array(MANIFEST["tokens"], np.int32)
REL_TOL = 1e-5


def rel_err(got, ref):
    return float(np.max(np.abs(got.astype(np.float64) - ref)) / np.max(np.abs(ref)))


def fixture_state_dict(name="tiny_fp32.pt"):
    """{official name: float32 array} of a committed PyTorch file."""
    with torchfile.load(os.path.join(DATA, name)) as f:
        return collections.OrderedDict((k, v.float32()) for k, v in f.obj.items())


class _Evil(object):
    """Pickles as a call of ``fn(*args)``: what a hostile checkpoint does."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class ConvertTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tf_convert_test.")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def out(self, name="out.safetensors"):
        return os.path.join(self.tmp, name)

    def assert_nothing_written(self, out):
        self.assertFalse(os.path.exists(out), "%s was written" % out)
        left = [n for n in os.listdir(os.path.dirname(out)) if ".tmp." in n]
        self.assertEqual(left, [], "temporary files left behind")

    def logits_of(self, path):
        with tf.Model.open(path) as m:
            return m.logits(TOKENS)

    # -- the files PyTorch wrote -------------------------------------------------------
    def test_pytorch_files_give_pytorch_logits(self):
        seen_layouts = set()
        for case in MANIFEST["cases"]:
            with self.subTest(source=case["source"]):
                out = self.out(case["source"].replace("/", "_") + ".safetensors")
                rep = tc.convert(os.path.join(DATA, case["source"]), out, config=CONFIG)
                self.assertEqual(rep.dtypes, [case["dtype"]])
                seen_layouts.add(rep.layout.split(" ")[0] + rep.layout.split(" ")[1])
                ref = np.load(os.path.join(DATA, case["logits"]), allow_pickle=False)
                err = rel_err(self.logits_of(out), ref)
                self.assertLess(err, REL_TOL, "%s: logits differ from PyTorch's by %.2e "
                                "(relative to the largest)" % (case["source"], err))
        # zip and legacy state_dicts, DeepSpeed 'module' and pipeline layer files
        self.assertEqual(len(seen_layouts), 4, seen_layouts)

    def test_deepspeed_entries_and_buffers(self):
        """The DeepSpeed file carries numpy/random/torch RNG states, torch.Size
        shapes, a set, and rotary inv_freq buffers: all read, none written."""
        out = self.out()
        rep = tc.convert(os.path.join(DATA, "deepspeed"), out, config=CONFIG)
        self.assertEqual(len(rep.ignored), 2)
        self.assertTrue(all(n.endswith("attention.rotary_emb.inv_freq") for n in rep.ignored))
        st = SafeTensors(out)
        self.assertFalse([n for n in st.tensors if "inv_freq" in n])
        with tf.Model.open(out) as m:
            self.assertEqual(sorted(st.tensors), sorted(m.tensor_names()))
        # a config whose rotary dims disagree with the saved frequencies
        with self.assertRaises(tc.ConversionError) as cm:
            tc.convert(os.path.join(DATA, "deepspeed"), self.out("b.safetensors"),
                       config=CONFIG, rotary_pct=0.5)
        self.assertIn("inv_freq", str(cm.exception))
        self.assert_nothing_written(self.out("b.safetensors"))

    def test_metadata_is_what_tf_model_save_writes(self):
        out = self.out()
        tc.convert(os.path.join(DATA, "tiny_fp32.pt"), out, config=CONFIG)
        mine = SafeTensors(out)
        saved = self.out("saved.safetensors")
        with tf.Model.from_config(CONFIG) as m:
            m.save(saved)
            names = m.tensor_names()
        lib = SafeTensors(saved)
        self.assertEqual(list(mine.tensors), names)
        for n in names:
            self.assertEqual(mine[n].shape, lib[n].shape, n)
        model_keys = {k: v for k, v in lib.metadata.items() if not k.startswith("pattention.")}
        for k, v in model_keys.items():
            self.assertEqual(mine.metadata.get(k), v, "metadata %s" % k)
        self.assertEqual(set(mine.metadata) - set(model_keys), {"converted_from"})
        self.assertEqual(mine.metadata["converted_from"], "tiny_fp32.pt")
        self.assertEqual(tc.tensor_shapes(tf.Config.load(CONFIG).model_params()).keys(),
                         collections.OrderedDict.fromkeys(names).keys())

    def test_command_line(self):
        out = self.out()
        r = subprocess.run([sys.executable, TOOL, os.path.join(DATA, "tiny_fp16.pt"), out,
                            "--config", CONFIG], capture_output=True, text=True,
                           cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("num_attention_heads", r.stdout)
        self.assertIn("float16", r.stdout)
        ref = np.load(os.path.join(DATA, "logits_fp16.npy"))
        self.assertLess(rel_err(self.logits_of(out), ref), REL_TOL)
        r = subprocess.run([sys.executable, TOOL, os.path.join(self.tmp, "nothing.pt"),
                            self.out("x.safetensors")], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("nothing.pt: no such file", r.stderr)
        self.assertNotIn("Traceback", r.stderr)

    # -- hostile and damaged files -----------------------------------------------------
    def hostile_files(self, marker):
        """(description, path) of files whose unpickling would run code."""
        cmd = "touch " + marker
        calls = [(os.system, cmd), (eval, "__import__('os').system(%r)" % cmd),
                 (subprocess.call, ["touch", marker]), (__import__, "os")]
        files = []
        for i, call in enumerate(calls):
            evil = _Evil(*call)
            raw = os.path.join(self.tmp, "raw%d.pt" % i)
            with open(raw, "wb") as f:
                pickle.dump(evil, f, protocol=2)
            files.append(("legacy-format pickle", raw))
            z = os.path.join(self.tmp, "zip%d.pt" % i)
            with zipfile.ZipFile(z, "w") as zf:
                zf.writestr("zip%d/data.pkl" % i, pickle.dumps(
                    {"module": collections.OrderedDict(), "optimizer": evil}, protocol=2))
                zf.writestr("zip%d/version" % i, "3\n")
            files.append(("zip, inside a DeepSpeed-style dict", z))
        ds = os.path.join(self.tmp, "ds", "global_step1")
        os.makedirs(ds)
        with open(os.path.join(self.tmp, "ds", "latest"), "w") as f:
            f.write("global_step1")
        shutil.copy(os.path.join(self.tmp, "zip0.pt"),
                    os.path.join(ds, "mp_rank_00_model_states.pt"))
        files.append(("DeepSpeed directory", os.path.join(self.tmp, "ds")))
        return files

    def test_hostile_pickles_are_refused(self):
        marker = os.path.join(self.tmp, "pwned")
        for what, path in self.hostile_files(marker):
            with self.subTest(what=what, path=os.path.basename(path)):
                out = self.out()
                with self.assertRaises(tc.ConversionError) as cm:
                    tc.convert(path, out, config=CONFIG)
                msg = str(cm.exception)
                self.assertIn("refusing to unpickle the global", msg)
                self.assertRegex(msg, r"'(posix\.system|builtins\.eval|subprocess\.call|"
                                 r"builtins\.__import__)'")
                self.assertFalse(os.path.exists(marker), "the pickle ran code")
                self.assert_nothing_written(out)
        r = subprocess.run([sys.executable, TOOL, os.path.join(self.tmp, "raw0.pt"),
                            self.out(), "--config", CONFIG], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("refusing to unpickle the global 'posix.system'", r.stderr)
        self.assertFalse(os.path.exists(marker))
        self.assert_nothing_written(self.out())

    def test_damaged_files(self):
        src = os.path.join(DATA, "tiny_fp32.pt")
        cases = {}
        blob = read(src)
        cases["truncated"] = blob[:len(blob) // 2]
        cases["not a checkpoint"] = b"hello, world\n" * 10
        short = os.path.join(self.tmp, "short.pt")
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(short, "w") as zout:
            for info in zin.infolist():
                data = zin.read(info.filename)
                if info.filename.endswith("/data/0"):
                    data = data[:len(data) // 2]  # a storage shorter than its tensor
                zout.writestr(info, data)
        cases["storage too short"] = read(short)
        for what, data in cases.items():
            with self.subTest(what=what):
                path = os.path.join(self.tmp, "bad.pt")
                with open(path, "wb") as f:
                    f.write(data)
                out = self.out()
                with self.assertRaises(tc.ConversionError) as cm:
                    tc.convert(path, out, config=CONFIG)
                self.assertIn("bad.pt", str(cm.exception))
                self.assert_nothing_written(out)

    def test_model_parallel_shards_are_refused(self):
        for names in (["mp_rank_00_model_states.pt", "mp_rank_01_model_states.pt"],
                      ["layer_00-model_00-model_states.pt", "layer_00-model_01-model_states.pt"]):
            with self.subTest(names=names):
                d = tempfile.mkdtemp(dir=self.tmp)
                for n in names:
                    shutil.copy(os.path.join(DATA, "tiny_fp32.pt"), os.path.join(d, n))
                out = self.out()
                with self.assertRaises(tc.ConversionError) as cm:
                    tc.convert(d, out, config=CONFIG)
                self.assertIn(names[1], str(cm.exception))
                self.assertIn("model_parallel_size 1", str(cm.exception))
                self.assert_nothing_written(out)

    # -- names, shapes and the configuration -------------------------------------------
    def convert_error(self, sd, **kw):
        out = self.out("refused.safetensors")
        kw.setdefault("config", CONFIG)
        with self.assertRaises(tc.ConversionError) as cm:
            tc.convert_state_dict(sd, out, **kw)
        self.assert_nothing_written(out)
        return str(cm.exception)

    def test_missing_extra_and_misshapen_tensors(self):
        sd = fixture_state_dict()
        del sd["sequential.3.mlp.value_param_tokens"]
        msg = self.convert_error(sd)
        self.assertIn("missing sequential.3.mlp.value_param_tokens "
                      "(layers.1.mlp.value_param_tokens)", msg)

        sd = fixture_state_dict()
        sd["sequential.2.attention.dense.weight"] = np.zeros((32, 32), np.float32)
        sd["sequential.9.whatever"] = np.zeros(3, np.float32)
        msg = self.convert_error(sd)
        self.assertIn("sequential.2.attention.dense.weight", msg)
        self.assertIn("sequential.9.whatever", msg)

        sd = fixture_state_dict()
        sd["sequential.2.attention.key.value_param_tokens"] = \
            sd["sequential.2.attention.key.value_param_tokens"][:-1]
        sd["sequential.5.norm.bias"] = np.zeros(31, np.float32)
        msg = self.convert_error(sd)
        self.assertIn("sequential.2.attention.key.value_param_tokens has shape [23, 32], "
                      "the model needs [24, 32]", msg)
        self.assertIn("sequential.5.norm.bias has shape [31]", msg)

        sd = fixture_state_dict()
        sd["sequential.6.norm.weight"] = sd.pop("sequential.5.norm.weight")
        self.assertIn("sequential.5", self.convert_error(sd))

    def test_configuration_from_yaml_flags_and_weights(self):
        sd = fixture_state_dict()
        bad = os.path.join(self.tmp, "wide.yml")
        with open(CONFIG) as f:
            text = f.read()
        with open(bad, "w") as f:
            f.write(text.replace('"hidden_size": 32', '"hidden_size": 48'))
        self.assertIn("hidden_size is 48 in the config, but the checkpoint has 32",
                      self.convert_error(sd, config=bad))
        # heads that do not divide the width: the library's own check
        self.assertIn("not divisible", self.convert_error(sd, num_attention_heads=3))

        # no vocab_size in the YAML: the library's default would be 50304;
        # the weights say 96
        novocab = os.path.join(self.tmp, "novocab.yml")
        with open(novocab, "w") as f:
            f.write(text.replace('"vocab_size": 96,', ""))
        rep = tc.convert_state_dict(sd, self.out(), config=novocab)
        self.assertEqual(rep.params.vocab_size, 96)
        self.assertIn("50304", rep.sources["vocab_size"])

        # without a YAML: what the weights cannot tell must be given
        msg = self.convert_error(sd, config=None)
        for k in ("num_attention_heads", "rotary_pct", "norm_activation_type", "seq_length"):
            self.assertIn(k, msg)
        self.assertIn("--config", msg)
        out = self.out("flags.safetensors")
        rep = tc.convert_state_dict(sd, out, num_attention_heads=2, rotary_pct=0.25,
                                    norm_activation_type="l2_norm_gelu", seq_length=16)
        self.assertEqual(rep.sources["hidden_size"], "weights")
        self.assertEqual(rep.sources["rotary_emb_base"], "library default")
        ref = np.load(os.path.join(DATA, "logits_fp32.npy"))
        self.assertLess(rel_err(self.logits_of(out), ref), REL_TOL)

        # a DeepSpeed checkpoint's GPT-NeoX args name the heads
        with self.assertRaises(tc.ConversionError) as cm:
            tc.convert(os.path.join(DATA, "deepspeed"), self.out("ds.safetensors"))
        self.assertNotIn("num_attention_heads", str(cm.exception))
        self.assertIn("rotary_pct", str(cm.exception))

    def test_library_names_and_dtypes(self):
        # a state_dict under the library's own names converts the same
        sd = fixture_state_dict()
        out = self.out()
        rep = tc.convert_state_dict(sd, out, config=CONFIG)
        with tf.Model.open(out) as m:
            lib_sd = m.state_dict()
        out2 = self.out("lib.safetensors")
        tc.convert_state_dict(lib_sd, out2, config=CONFIG)
        st1, st2 = SafeTensors(out), SafeTensors(out2)
        for n in st1.tensors:
            np.testing.assert_array_equal(st1[n], st2[n])
        del lib_sd["layers.1.mlp.key_param_tokens"]
        msg = self.convert_error(lib_sd)
        self.assertIn("missing layers.1.mlp.key_param_tokens", msg)
        self.assertNotIn("sequential", msg)
        lib_sd["layers.1.mlp.key_param_tokens"] = st2["layers.1.mlp.key_param_tokens"]
        mixed = dict(lib_sd)
        mixed["sequential.0.word_embeddings.weight"] = mixed.pop("embed.weight")
        self.assertIn("mixes official names", self.convert_error(mixed))
        self.assertEqual(rep.params.num_layers, 2)

        # bf16 and f16 out of bf16 and f16 sources keep every bit
        for src_name, dtype, st_dtype in (("tiny_bf16.pt", "bf16", "BF16"),
                                          ("tiny_fp16.pt", "f16", "F16")):
            out = self.out(dtype + ".safetensors")
            tc.convert(os.path.join(DATA, src_name), out, config=CONFIG, dtype=dtype)
            with open(out, "rb") as f:
                n = int.from_bytes(f.read(8), "little")
                header = json.loads(f.read(n))
                body = f.read()
            with torchfile.load(os.path.join(DATA, src_name)) as tfile:
                e = header["embed.weight"]
                self.assertEqual(e["dtype"], st_dtype)
                b, en = e["data_offsets"]
                want = tfile.obj["sequential.0.word_embeddings.weight"].numpy()
                self.assertEqual(body[b:en], want.tobytes())
        big = fixture_state_dict()
        big["sequential.0.word_embeddings.weight"][0, 0] = 1e6
        self.assertIn("float16's range", self.convert_error(big, dtype="f16"))

    def test_half_outputs_load(self):
        """--dtype bf16 / f16 files open in the library (widened exactly):
        their logits are those of the float32 weights rounded to the
        format, and PyTorch's float32 logits to that format's precision."""
        ref = np.load(os.path.join(DATA, "logits_fp32.npy"))
        f32 = fixture_state_dict()
        bits = {"bf16": lambda a: tc._to_bf16_bits(a).astype(np.uint32) << np.uint32(16),
                "f16": lambda a: a.astype(np.float16).astype(np.float32).view(np.uint32)}
        # eps of the format: the logits move by a few of them, relative
        for dtype, eps in (("bf16", 2.0 ** -8), ("f16", 2.0 ** -11)):
            with self.subTest(dtype=dtype):
                out = self.out(dtype + ".safetensors")
                tc.convert(os.path.join(DATA, "tiny_fp32.pt"), out, config=CONFIG, dtype=dtype)
                with open(out, "rb") as f:
                    header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
                self.assertEqual(header["embed.weight"]["dtype"], dtype.upper())
                got = self.logits_of(out)
                with tf.Model.open(out) as m:
                    for lib, off in tc._map_names(list(f32))[0].items():
                        np.testing.assert_array_equal(
                            m.get_tensor(lib).view(np.uint32), bits[dtype](f32[off]), lib)
                    rounded = m.state_dict()
                with tf.Model.from_config(CONFIG) as m:
                    m.load_state_dict(rounded)
                    np.testing.assert_array_equal(got, m.logits(TOKENS))
                err = rel_err(got, ref)
                self.assertLess(err, 8 * eps, "%s logits off PyTorch's float32 by %.2e"
                                % (dtype, err))
                self.assertGreater(err, REL_TOL)  # the rounding does show

    def test_open_official_names_with_config(self):
        """A file with the official names and no configuration (what a
        hand-written script gives): Model.open needs its YAML, as a path or
        a Config, and then gives PyTorch's logits; errors name tensors as
        the file does."""
        sd = fixture_state_dict()
        path = self.out("official.safetensors")
        safetensors.write(path, [(k, "F32", tuple(a.shape), (lambda a=a: a))
                                 for k, a in sd.items()], {})
        with self.assertRaises(tf.FormatError) as cm:
            tf.Model.open(path)
        self.assertIn("no configuration in the metadata", str(cm.exception))
        ref = np.load(os.path.join(DATA, "logits_fp32.npy"))
        with tf.Config.load(CONFIG) as cfg:
            for config in (CONFIG, cfg):
                with tf.Model.open(path, config=config) as m:
                    self.assertLess(rel_err(m.logits(TOKENS), ref), REL_TOL)
        del sd["sequential.5.norm.bias"]
        holed = self.out("holed.safetensors")
        safetensors.write(holed, [(k, "F32", tuple(a.shape), (lambda a=a: a))
                                  for k, a in sd.items()], {})
        with self.assertRaises(tf.FormatError) as cm:
            tf.Model.open(holed, config=CONFIG)
        self.assertIn("no tensor 'sequential.5.norm.bias' (final_norm.bias)", str(cm.exception))

    def test_model_export_bf16(self):
        """Model.export writes what the converter's --dtype bf16 does: the
        same rounding, loaded back exactly."""
        out = self.out()
        tc.convert(os.path.join(DATA, "tiny_fp32.pt"), out, config=CONFIG)
        exported, converted = self.out("exported.safetensors"), self.out("bf16.safetensors")
        tc.convert(os.path.join(DATA, "tiny_fp32.pt"), converted, config=CONFIG, dtype="bf16")
        with tf.Model.open(out) as m:
            m.export(exported, dtype="bf16")
            with self.assertRaises(ValueError):
                m.export(exported, dtype="f64")
        with tf.Model.open(exported) as a, tf.Model.open(converted) as b:
            for n in a.tensor_names():
                np.testing.assert_array_equal(a.get_tensor(n), b.get_tensor(n), n)
        self.assertLess(os.path.getsize(exported), 0.6 * os.path.getsize(out))

    def test_output_is_atomic(self):
        src = os.path.join(DATA, "tiny_fp32.pt")
        out = self.out()
        with open(out, "wb") as f:
            f.write(b"old contents")
        os.chmod(out, 0o640)
        tc.convert(src, out, config=CONFIG)
        self.assertEqual(os.stat(out).st_mode & 0o777, 0o640)  # the old file's mode kept
        # a failure half-way through writing keeps the old file
        old = read(out)

        def fail():
            raise tc.ConversionError("tensor b cannot be read")
        with self.assertRaises(tc.ConversionError):
            safetensors.write(out, [("a", "F32", (2,), lambda: np.ones(2)),
                                    ("b", "F32", (2,), fail)], {"k": "v"})
        self.assertEqual(read(out), old)
        self.assertEqual([n for n in os.listdir(self.tmp) if ".tmp." in n], [])
        sd = fixture_state_dict()
        sd["sequential.5.norm.bias"] = np.array(["x"] * 32)
        self.assertIn("sequential.5.norm.bias has dtype", self.convert_error(sd))
        # the output must not be the input
        copy = os.path.join(self.tmp, "copy.pt")
        shutil.copy(src, copy)
        with self.assertRaises(tc.ConversionError) as cm:
            tc.convert(copy, copy, config=CONFIG)
        self.assertIn("being read", str(cm.exception))
        self.assertEqual(read(copy), read(src))


if __name__ == "__main__":
    unittest.main()
