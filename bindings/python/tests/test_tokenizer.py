"""Tests of tokenformer.Tokenizer: the JavaScript reference's ids on the
committed corpora (tests/data/tokenizer/), through the bindings, and the
Python side of the API (str/bytes, errors, look-ups, closing).

GPT-2's tokenizer.json comes from `make tokenizer-data` (build/npm); the
cases that need it are skipped, saying so, when it is not there."""

import json
import os
import unittest

import numpy as np

import helpers  # noqa: F401 -- puts this tree's package first on sys.path

import tokenformer as tf

DATA = os.path.join(helpers.ROOT, "tests", "data", "tokenizer")
GPT2 = os.environ.get("TF_TEST_GPT2_TOKENIZER") or os.path.join(
    helpers.ROOT, "build", "npm", "node_modules", "@lenml", "tokenizer-gpt2", "models",
    "tokenizer.json")
NO_GPT2 = "no %s (make tokenizer-data fetches it)" % GPT2


def cases(name):
    with open(os.path.join(DATA, name), encoding="utf-8") as f:
        return json.load(f)["cases"]


class TestReference(unittest.TestCase):
    """Every fixture case: the ids and the decoding the reference gives."""

    def check(self, tokenizer_path, fixture):
        with tf.Tokenizer(tokenizer_path) as tok:
            for i, c in enumerate(cases(fixture)):
                text = bytes.fromhex(c["hex"]) if "hex" in c else c["text"]
                with self.subTest(fixture=fixture, case=i, text=c["text"][:40]):
                    ids = tok.encode(text)
                    self.assertEqual(ids.dtype, np.int32)
                    self.assertEqual(ids.tolist(), c["ids"])
                    self.assertEqual(tok.decode(ids), c.get("decoded", c["text"]))

    @unittest.skipUnless(os.path.exists(GPT2), NO_GPT2)
    def test_gpt2(self):
        self.check(GPT2, "gpt2_cases.json")

    def test_neox_style(self):
        self.check(os.path.join(DATA, "neox_style.json"), "neox_style_cases.json")
        self.check(os.path.join(DATA, "neox_style_prefix.json"), "neox_style_prefix_cases.json")


class TestTokenizer(unittest.TestCase):
    def setUp(self):
        self.path = os.path.join(DATA, "neox_style.json")
        self.tok = tf.Tokenizer(self.path)

    def tearDown(self):
        self.tok.close()

    def test_str_and_bytes(self):
        self.assertEqual(self.tok.encode("caf\u00e9").tolist(),
                         self.tok.encode("caf\u00e9".encode("utf-8")).tolist())
        self.assertEqual(self.tok.encode(bytearray(b"the cat")).tolist(),
                         self.tok.encode("the cat").tolist())
        self.assertEqual(self.tok.encode("").size, 0)
        self.assertEqual(self.tok.decode([]), "")
        # NFC: the decomposed spelling encodes as the composed one
        self.assertEqual(self.tok.encode("cafe\u0301").tolist(),
                         self.tok.encode("caf\u00e9").tolist())

    def test_more_ids_than_bytes(self):
        # each invalid byte becomes U+FFFD (3 bytes, here 3 ids): more ids
        # than the first buffer holds, so the size is asked for
        ids = self.tok.encode(b"\xff" * 100)
        self.assertEqual(ids.size, 300)
        self.assertEqual(self.tok.decode(ids), "\ufffd" * 100)

    def test_decode_bytes_partial_character(self):
        ids = self.tok.encode("\U0001F600")
        self.assertGreater(ids.size, 1)
        part = self.tok.decode_bytes(ids[:1])
        self.assertTrue("\U0001F600".encode("utf-8").startswith(part))
        self.assertLess(len(part), 4)
        self.assertEqual(self.tok.decode(ids[:1]), "\ufffd")

    def test_lookups(self):
        tok = self.tok
        added = tok.added_tokens
        self.assertEqual(list(added)[:2], ["<|endoftext|>", "<|padding|>"])
        self.assertEqual(added["<|endoftext|>"], 0)
        self.assertEqual(tok.token_to_id("<|endoftext|>"), 0)
        self.assertEqual(tok.id_to_token(0), "<|endoftext|>")
        self.assertTrue(tok.is_special(0))
        self.assertFalse(tok.is_special(added["  "]))
        self.assertEqual(tok.vocab_size, max(added.values()) + 1)
        self.assertEqual(len(tok), tok.vocab_size)
        space = tok.token_to_id("\u0120")  # the symbol of byte 0x20
        self.assertEqual(tok.decode_bytes([space]), b" ")
        with self.assertRaises(tf.NotFoundError):
            tok.token_to_id("no such token")
        with self.assertRaises(KeyError):
            tok.token_to_id("no such token")
        with self.assertRaises(tf.RangeError):
            tok.id_to_token(tok.vocab_size)
        with self.assertRaises(IndexError):
            tok.decode([0, -1])
        self.assertIn("ids[1] = -1", tf.last_error())

    def test_from_json_and_errors(self):
        with open(self.path, encoding="utf-8") as f:
            text = f.read()
        with tf.Tokenizer.from_json(text) as t2:
            self.assertEqual(t2.encode("the cat").tolist(), self.tok.encode("the cat").tolist())
        with self.assertRaises(tf.FormatError) as cm:
            tf.Tokenizer.from_json(text.replace('"type": "BPE"', '"type": "Unigram"'))
        self.assertIn("only \"BPE\"", str(cm.exception))
        with self.assertRaises(tf.FormatError):
            tf.Tokenizer.from_json(b"{\"model\": ")
        with self.assertRaises(OSError):
            tf.Tokenizer(os.path.join(DATA, "no-such-file.json"))

    def test_closed(self):
        t = tf.Tokenizer(self.path)
        t.close()
        t.close()
        self.assertIn("closed", repr(t))
        with self.assertRaises(tf.ClosedError):
            t.encode("x")


if __name__ == "__main__":
    unittest.main()
