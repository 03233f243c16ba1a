#!/usr/bin/env python3
"""make_neox_style.py -- writes the small hand-made tokenizer.json files of
tests/data/tokenizer/ that carry the features of GPT-NeoX-20B's tokenizer
which GPT-2's lacks: the NFC normaliser and added tokens (special and not,
"normalized" and not, runs of spaces as NeoX has them, lstrip/rstrip).

    /usr/bin/python3 tests/reference/make_neox_style.py [OUT_DIR]

neox_style.json: add_prefix_space false, merges as "a b" strings (the
format of GPT-2's and NeoX's files); neox_style_prefix.json: the same with
add_prefix_space true and merges as ["a", "b"] pairs (the newer format).

The vocabulary is the 256 byte-level symbols plus MERGES merges learnt by
plain BPE training on a fixed slice of Debian's fortunes (words split at
spaces, a space kept at the start of a word, as GPT-2's pre-tokenizer
does).  The training only has to produce a valid file; the ids it encodes
to come from the JavaScript reference (tokenizer_ref.mjs), not from here.
"""

import collections
import json
import os
import sys

MERGES = 300
FORTUNES = "/usr/share/games/fortunes/fortunes"


def bytes_to_unicode():
    """GPT-2's table: printable bytes map to themselves, the others to
    U+0100 upwards, in byte order."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1))
          + list(range(0xAE, 0xFF + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def train(text, merges_wanted, b2u):
    words = collections.Counter()
    for line in text.split("\n"):
        for i, w in enumerate(line.split(" ")):
            if w:
                words[(" " if i else "") + w] += 1
    corpus = {tuple(b2u[b] for b in w.encode("utf-8")): n for w, n in words.items()}
    merges = []
    for _ in range(merges_wanted):
        pairs = collections.Counter()
        for sym, n in corpus.items():
            for a, b in zip(sym, sym[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        best = max(sorted(pairs), key=lambda p: pairs[p])
        merges.append(best)
        new = {}
        for sym, n in corpus.items():
            out, i = [], 0
            while i < len(sym):
                if i + 1 < len(sym) and (sym[i], sym[i + 1]) == best:
                    out.append(sym[i] + sym[i + 1])
                    i += 2
                else:
                    out.append(sym[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + n
        corpus = new
    return merges


def added(id_, content, special, normalized, lstrip=False, rstrip=False):
    return {"id": id_, "content": content, "single_word": False, "lstrip": lstrip,
            "rstrip": rstrip, "normalized": normalized, "special": special}


def build(merges, b2u, prefix_space, pair_merges):
    vocab = {"<|endoftext|>": 0, "<|padding|>": 1}
    for b in range(256):
        vocab[b2u[b]] = len(vocab)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    n = len(vocab)
    added_tokens = [
        added(0, "<|endoftext|>", True, False),
        added(1, "<|padding|>", True, False),
        # runs of spaces, as GPT-NeoX-20B adds them (normalized, not special)
        added(n + 0, "        ", False, True),
        added(n + 1, "    ", False, True),
        added(n + 2, "   ", False, True),
        added(n + 3, "  ", False, True),
        added(n + 4, "<mask>", True, False, lstrip=True),
        added(n + 5, "[RSTRIP]", False, False, rstrip=True),
        # normalized: matched after NFC, so both spellings find it
        added(n + 6, "A\u030aB", False, True),
        # not normalized: matched in the raw text only
        added(n + 7, "e\u0301!", False, False),
    ]
    ws = {"type": "ByteLevel", "add_prefix_space": prefix_space, "trim_offsets": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added_tokens,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": dict(ws),
        "post_processor": dict(ws),
        "decoder": dict(ws),
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "vocab": vocab,
            "merges": [[a, b] for a, b in merges] if pair_merges
            else ["%s %s" % (a, b) for a, b in merges],
        },
    }


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "data", "tokenizer")
    with open(FORTUNES, encoding="utf-8") as f:
        text = f.read()[:60000]
    b2u = bytes_to_unicode()
    merges = train(text, MERGES, b2u)
    for name, prefix, pairs in (("neox_style.json", False, False),
                                ("neox_style_prefix.json", True, True)):
        path = os.path.join(out_dir, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(build(merges, b2u, prefix, pairs), f, ensure_ascii=False, indent=1)
            f.write("\n")
        print("%s: %d merges" % (path, len(merges)))


if __name__ == "__main__":
    main()
