#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/*): small valid
inputs of every format, so that fuzzing starts from files that parse.
Run from the repository root after `make` (it saves a checkpoint through
the Python bindings): /usr/bin/python3 tests/fuzz/make_seeds.py"""
import os
import shutil
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
import numpy as np  # noqa: E402
import tokenformer as tf  # noqa: E402

CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def checkpoints():
    d = os.path.join(CORPUS, "checkpoint")
    os.makedirs(d, exist_ok=True)
    # the fuzz target's fixed model has this shape, so loads get past the shape checks
    m = tf.Model(num_layers=1, hidden_size=8, num_attention_heads=2, qkv_slot_num=4,
                 proj_slot_num=4, ffn_slot_num=8, vocab_size=16, seq_length=8, rotary_pct=0.5)
    m.save(os.path.join(d, "tiny.safetensors"))
    opt = tf.Optimizer(m)
    tokens = np.arange(8, dtype=np.int32).reshape(1, 8) % 16
    m.forward(tokens, targets=(tokens + 1) % 16)
    m.backward()
    opt.step()
    m.save(os.path.join(d, "tiny_opt.safetensors"), optimizer=opt)
    s = tf.Model(num_layers=1, hidden_size=8, num_attention_heads=2, qkv_slot_num=2,
                 proj_slot_num=2, ffn_slot_num=4, vocab_size=16, seq_length=8, rotary_pct=0.5)
    s.save(os.path.join(d, "smaller.safetensors"))


def configs():
    for name in ("model_tiny.yml", "grow_tiny.yml"):
        shutil.copy(os.path.join(ROOT, "tests", "data", name), os.path.join(CORPUS, "config", name))
    shutil.copy(os.path.join(ROOT, "tests", "data", "configs", "150M_eval.yml"),
                os.path.join(CORPUS, "config", "150M_eval.yml"))
    put("config", "nested.yml", b"a: {b: [1, 2.5, {c: 'x'}], d: True}\nseq-length: 16\n"
        b"optimizer:\n  type: Adam\n  params: {lr: 0.001, betas: [0.9, 0.95]}\n")


def datasets():
    text = b"The quick brown fox jumps over the lazy dog.\n" * 4
    put("dataset", "bytes.txt", bytes([0x01]) + text)  # format byte: bytes, vocab 256
    u16 = np.arange(64, dtype="<u2").tobytes()
    put("dataset", "u16.bin", bytes([0x02]) + u16)
    for magic, version, dt in ((20240520, 1, "<u2"), (20240801, 7, "<u4")):
        ids = (np.arange(48) * 7 % 256).astype(dt).tobytes()
        header = np.zeros(256, dtype="<i4")
        header[:3] = (magic, version, 48)
        put("dataset", "llmc_v%d.bin" % version, bytes([0x03 | 0x08]) + header.tobytes() + ids)


if __name__ == "__main__":
    for t in ("checkpoint", "config", "dataset"):
        os.makedirs(os.path.join(CORPUS, t), exist_ok=True)
    checkpoints()
    configs()
    datasets()
    print("seeds written to", CORPUS)
