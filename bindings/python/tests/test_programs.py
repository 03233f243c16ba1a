"""The programs a user of a released model runs (README, "Run a released
TokenFormer model"): examples/generate and examples/eval on the PyTorch-
written tiny checkpoint, converted, with the committed NeoX-style
tokenizer fixture (tests/data/tokenizer/neox_style.json).  Their outputs are
checked against the same computations done here through the bindings:
generation (greedy, seeded sampling with GPT-NeoX's settings, the stream
decoded as whole UTF-8 characters), the official evaluation windows."""

import collections
import math
import os
import random
import re
import shutil
import subprocess
import tempfile
import unittest

import numpy as np

from helpers import ROOT

import tokenformer as tf
from tokenformer import convert as tc
from tokenformer import safetensors, torchfile

DATA = os.path.join(ROOT, "tests", "data")
TORCH = os.path.join(DATA, "torch")
CONFIG = os.path.join(TORCH, "tiny.yml")
TOKENIZER = os.path.join(DATA, "tokenizer", "neox_style.json")
GENERATE = os.path.join(ROOT, "build", "examples", "generate")
EVAL = os.path.join(ROOT, "build", "examples", "eval")
# Characters the NeoX-style fixture encodes to ids below the tiny model's
# vocabulary of 96 (single bytes, no merges): the model's own alphabet.
SAFE = "0123456789+*/=()<>[]:;,!?#$%&@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
EOS = 0  # <|endoftext|> in the fixture, as in GPT-NeoX-20B's


def safe_text(n, seed):
    r = random.Random(seed)
    return "".join(r.choice(SAFE) for _ in range(n))


@unittest.skipUnless(os.path.exists(GENERATE) and os.path.exists(EVAL),
                     "build/examples/generate and eval are not built (make)")
class ProgramsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tf_programs_test.")
        cls.model = os.path.join(cls.tmp, "tiny.safetensors")
        tc.convert(os.path.join(TORCH, "tiny_fp32.pt"), cls.model, config=CONFIG)
        cls.tok = tf.Tokenizer(TOKENIZER)

    @classmethod
    def tearDownClass(cls):
        cls.tok.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_prog(self, prog, *args, ok=True):
        r = subprocess.run([prog] + [str(a) for a in args], capture_output=True)
        if ok:
            self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        else:
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertNotIn(b"Segmentation", r.stderr)
        return r

    def generate(self, *args, model=None, ok=True):
        return self.run_prog(GENERATE, model or self.model, "--tokenizer", TOKENIZER, *args,
                             ok=ok)

    @staticmethod
    def shown_ids(stderr):
        m = re.search(rb"generate: ids:([ 0-9]*)\n", stderr)
        return [int(x) for x in m.group(1).split()]

    def expected_stdout(self, prompt, ids):
        """What generate prints: the prompt, the ids decoded (the
        end-of-text token and ids beyond the tokenizer's left out), a final
        newline unless there is one."""
        known = [i for i in ids if i != EOS and i < self.tok.vocab_size]
        text = prompt.encode() + self.tok.decode_bytes(known)
        text = text.decode("utf-8", "replace").encode()
        return text if text.endswith(b"\n") else text + b"\n"

    # -- generate -------------------------------------------------------------------
    def test_sampling_is_the_official_one_and_reproducible(self):
        prompt = "1+2=3"
        # the tiny model is sure of itself: a high temperature lets seeds differ
        args = ["--prompt", prompt, "--temperature", "20", "--top-k", "20", "--top-p", "0.95",
                "--maximum-tokens", "40", "--show-ids"]
        a = self.generate(*args, "--seed", "5")
        b = self.generate(*args, "--seed", "5")
        c = self.generate(*args, "--seed", "6")
        self.assertEqual(a.stdout, b.stdout)
        ids = self.shown_ids(a.stderr)
        self.assertNotEqual(ids, self.shown_ids(c.stderr))
        self.assertEqual(a.stdout, self.expected_stdout(prompt, ids))
        # the same draws through the bindings: the official settings, the
        # end-of-text token as the stop
        with tf.Model.open(self.model) as m, tf.Decoder(m) as dec:
            dec.prefill(self.tok.encode(prompt))
            p = tf.official_sampler_params(temperature=20, top_k=20, top_p=0.95, seed=5)
            want = dec.generate(40, params=p, stop_ids=[EOS])[0]
            # until the context (16) is full; generate then slides its window
            self.assertEqual(len(want), 16 - len(self.tok.encode(prompt)))
            self.assertEqual(ids[:len(want)], [int(i) for i in want])
            # greedy: all three 0
            g = self.generate("--prompt", prompt, "--temperature", "0", "--maximum-tokens", "10",
                              "--show-ids")
            dec.reset()
            lg = dec.prefill(self.tok.encode(prompt))
            greedy = []
            for _ in range(10):
                greedy.append(int(np.argmax(lg[0])))
                if greedy[-1] == EOS:
                    break
                lg = dec.step(greedy[-1])
            self.assertEqual(self.shown_ids(g.stderr), greedy)

    def test_stream_prints_whole_characters(self):
        """A model over the whole tokenizer emits byte tokens >= 0x80 that
        end inside characters: the stream is what decoding all ids at once
        gives, valid UTF-8, invalid bytes as U+FFFD."""
        path = os.path.join(self.tmp, "wide.safetensors")
        with tf.Model(num_layers=1, hidden_size=16, num_attention_heads=2, qkv_slot_num=8,
                      proj_slot_num=8, ffn_slot_num=16, vocab_size=576, seq_length=64,
                      seed=9) as m:
            rng = np.random.default_rng(2)
            m.set_tensor("embed.weight", rng.normal(0, 0.05, (576, 16)).astype(np.float32))
            m.save(path)
        prompt = "é"  # two byte tokens
        r = self.generate("--prompt", prompt, "--temperature", "1.0", "--maximum-tokens", "300",
                          "--seed", "4", "--show-ids", "--ignore-eos", model=path)
        ids = self.shown_ids(r.stderr)
        self.assertGreaterEqual(len(ids), 60)  # the sliding window took over at 64
        self.assertTrue(any(130 <= i < 258 for i in ids), "no byte token >= 0x80 drawn")
        self.assertTrue(any(i >= 566 for i in ids), "no padding id drawn")
        self.assertIn(b"are not in the tokenizer", r.stderr)
        r.stdout.decode("utf-8")  # strict: only whole characters were printed
        self.assertEqual(r.stdout, self.expected_stdout(prompt, ids))
        self.assertIn(b"sliding window", r.stderr)

    def test_long_prompt_is_truncated_from_the_left(self):
        prompt = safe_text(40, 3)  # the context is 16
        r = self.generate("--prompt", prompt, "--temperature", "0", "--maximum-tokens", "3",
                          "--show-ids")
        self.assertIn(b"the prompt has 40 tokens, more than the context of 16: its first 24 "
                      b"are left out", r.stderr)
        with tf.Model.open(self.model) as m, tf.Decoder(m) as dec:
            lg = dec.prefill(self.tok.encode(prompt)[-16:])
            self.assertEqual(self.shown_ids(r.stderr)[0], int(np.argmax(lg[0])))

    def test_refusals(self):
        for bad in ("1.5", "-0.1", "nan"):
            r = self.generate("--prompt", "1", "--top-p", bad, ok=False)
            self.assertIn(b"--top-p needs a number in [0, 1]", r.stderr)
        r = self.generate("--prompt", "hello world", ok=False)  # ids the model does not have
        self.assertIn(b"outside the model's vocabulary of 96", r.stderr)
        r = self.run_prog(GENERATE, os.path.join(TORCH, "tiny_fp32.pt"), ok=False)
        self.assertIn(b"convert it with tools/convert_checkpoint.py", r.stderr)

    def test_official_names_need_the_config(self):
        with torchfile.load(os.path.join(TORCH, "tiny_fp32.pt")) as f:
            sd = collections.OrderedDict((k, v.float32()) for k, v in f.obj.items())
        path = os.path.join(self.tmp, "official.safetensors")
        safetensors.write(path, [(k, "F32", tuple(a.shape), (lambda a=a: a))
                                 for k, a in sd.items()], {})
        r = self.generate("--prompt", "7", model=path, ok=False)
        self.assertIn(b"no configuration in the metadata", r.stderr)
        args = ["--prompt", "7", "--temperature", "0", "--maximum-tokens", "8", "--show-ids"]
        r = self.generate(*args, "--config", CONFIG, model=path)
        self.assertEqual(self.shown_ids(r.stderr), self.shown_ids(self.generate(*args).stderr))
        # a config that disagrees with the checkpoint's own
        wide = os.path.join(self.tmp, "wide.yml")
        with open(CONFIG) as f:
            text = f.read()
        with open(wide, "w") as f:
            f.write(text.replace('"hidden_size": 32', '"hidden_size": 48'))
        r = self.generate("--prompt", "7", "--config", wide, ok=False)
        self.assertIn(b"'hidden_size' is 48 in the configuration but 32", r.stderr)

    def test_generation_config(self):
        gen = os.path.join(DATA, "configs", "text_generation.yml")  # maximum_tokens 102
        r = self.generate("--prompt", "1", "--generation-config", gen, "--ignore-eos",
                          "--show-ids")
        self.assertEqual(len(self.shown_ids(r.stderr)), 102)
        r = self.generate("--prompt", "1", "--generation-config", gen, "--maximum-tokens", "5",
                          "--ignore-eos", "--show-ids")
        self.assertEqual(len(self.shown_ids(r.stderr)), 5)

    # -- eval --------------------------------------------------------------------------
    @staticmethod
    def parsed(stdout):
        out = stdout.decode()
        windows = int(re.search(r"windows +(\d+) of", out).group(1))
        loss = float(re.search(r"mean loss +([0-9.]+)", out).group(1))
        ppl = float(re.search(r"perplexity +([0-9.e+]+)", out).group(1))
        return windows, loss, ppl

    def official_loss(self, model, ids, T):
        """Non-overlapping windows of T + 1 (stride T), every position."""
        W = (len(ids) - 1) // T
        seq = np.array([ids[w * T:w * T + T + 1] for w in range(W)], np.int32)
        return W, model.loss(seq[:, :-1], seq[:, 1:])

    def test_eval_text_and_tokens(self):
        text = safe_text(1000, 7)
        path = os.path.join(self.tmp, "text.txt")
        with open(path, "w") as f:
            f.write(text)
        ids = self.tok.encode(text)
        with tf.Model.open(self.model) as m:
            W, want = self.official_loss(m, ids, 16)
        r = self.run_prog(EVAL, self.model, "--text", path, "--tokenizer", TOKENIZER)
        windows, loss, ppl = self.parsed(r.stdout)
        self.assertEqual(windows, W)
        self.assertAlmostEqual(loss, want, delta=2e-5 * want)
        self.assertAlmostEqual(ppl, math.exp(loss), delta=1e-5 * ppl)
        self.assertIn(b"%d/%d windows" % (W, W), r.stderr)
        # batched, and from a token file (uint16 .bin), the same
        bin_path = os.path.join(self.tmp, "ids.bin")
        np.asarray(ids, np.uint16).tofile(bin_path)
        for args in (["--text", path, "--tokenizer", TOKENIZER, "--batch", "4"],
                     ["--tokens", bin_path]):
            r = self.run_prog(EVAL, self.model, *args)
            self.assertEqual(self.parsed(r.stdout)[0], W)
            self.assertAlmostEqual(self.parsed(r.stdout)[1], loss, delta=1e-5 * loss)
        r = self.run_prog(EVAL, self.model, "--tokens", bin_path, "--max-windows", "5")
        with tf.Model.open(self.model) as m:
            self.assertAlmostEqual(self.parsed(r.stdout)[1], self.official_loss(m, ids[:81], 16)[1],
                                   delta=2e-5 * loss)

    def test_eval_bytes_mode(self):
        path = os.path.join(self.tmp, "bytes.safetensors")
        with tf.Model(num_layers=1, hidden_size=16, num_attention_heads=2, qkv_slot_num=8,
                      proj_slot_num=8, ffn_slot_num=16, vocab_size=256, seq_length=32,
                      seed=5) as m:
            m.save(path)
            data = "Ünïcödé and ASCII, in bytes.\n".encode() * 20
            W, want = self.official_loss(m, list(data), 32)
        text = os.path.join(self.tmp, "bytes.txt")
        with open(text, "wb") as f:
            f.write(data)
        windows, loss, _ = self.parsed(self.run_prog(EVAL, path, "--text", text).stdout)
        self.assertEqual(windows, W)
        self.assertAlmostEqual(loss, want, delta=2e-5 * want)

    def test_eval_refusals(self):
        path = os.path.join(self.tmp, "lower.txt")
        with open(path, "w") as f:
            f.write("hello world " * 20)
        r = self.run_prog(EVAL, self.model, "--text", path, "--tokenizer", TOKENIZER, ok=False)
        self.assertIn(b"outside [0, vocab_size 96)", r.stderr)
        r = self.run_prog(EVAL, self.model, "--text", path, ok=False)
        self.assertIn(b"vocabulary of 256", r.stderr)
        r = self.run_prog(EVAL, self.model, "--text", path, "--tokens", path, ok=False)
        self.assertIn(b"one of --text FILE or --tokens FILE", r.stderr)
        with open(path, "w") as f:
            f.write("12")
        r = self.run_prog(EVAL, self.model, "--text", path, "--tokenizer", TOKENIZER, ok=False)
        self.assertIn(b"fewer than one window", r.stderr)


if __name__ == "__main__":
    unittest.main()
