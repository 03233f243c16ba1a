"""The public API as inspect and IDEs see it: constructors list their
parameters (the fields of the params struct behind them, as explicit
keyword parameters), and every public function and method has type hints."""

import inspect
import unittest

import helpers  # noqa: F401  (puts this tree's package first on sys.path)

import tokenformer as tf
from tokenformer import convert, inference, pattention


def keyword_only(fn):
    return [p.name for p in inspect.signature(fn).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY]


def fields(struct):
    return [f[0] for f in struct._fields_ if f[0] != "struct_size"]


class SignatureTest(unittest.TestCase):
    def test_constructors_name_the_struct_fields(self):
        cases = [
            (tf.ModelParams, tf.ModelParams), (tf.Model, tf.ModelParams),
            (tf.VisionParams, tf.VisionParams), (tf.Model.vision, tf.VisionParams),
            (tf.PattentionParams, tf.PattentionParams), (tf.Pattention, tf.PattentionParams),
            (tf.GrowParams, tf.GrowParams), (pattention.grow_params, tf.GrowParams),
            (tf.OptimizerParams, tf.OptimizerParams), (tf.Optimizer, tf.OptimizerParams),
            (tf.SamplerParams, tf.SamplerParams), (tf.Sampler, tf.SamplerParams),
            (inference.sampler_params, tf.SamplerParams),
        ]
        for fn, struct in cases:
            with self.subTest(fn=fn.__qualname__):
                self.assertEqual(keyword_only(fn), fields(struct))
                sig = inspect.signature(fn)
                self.assertFalse([p for p in sig.parameters.values()
                                  if p.kind is inspect.Parameter.VAR_KEYWORD])
        # the fields reach the struct (None keeps the library's default)
        p = tf.ModelParams(hidden_size=48, norm="softmax")
        self.assertEqual((p.hidden_size, p.norm), (48, tf.Norm.SOFTMAX))
        self.assertEqual(p.num_layers, tf.ModelParams().num_layers)
        with self.assertRaises(TypeError):
            tf.ModelParams(hidden_sise=48)  # a typo is refused, naming the argument
        with tf.Model(tf.ModelParams(num_layers=1, hidden_size=16, num_attention_heads=2),
                      qkv_slot_num=8, proj_slot_num=8, ffn_slot_num=16, seq_length=8) as m:
            self.assertEqual((m.params.num_layers, m.params.qkv_slot_num), (1, 8))

    def test_public_api_has_type_hints(self):
        """Every function and public method reachable from tokenformer.__all__
        (and the converter's API) annotates its parameters and its result."""
        missing = []

        def check(fn, where):
            try:
                sig = inspect.signature(fn)
            except (TypeError, ValueError):
                return
            for p in sig.parameters.values():
                if p.name in ("self", "cls") or p.kind in (p.VAR_POSITIONAL,):
                    continue
                if p.annotation is inspect.Parameter.empty:
                    missing.append("%s: parameter %s" % (where, p.name))
            if sig.return_annotation is inspect.Signature.empty:
                missing.append("%s: return type" % where)

        objs = [(n, getattr(tf, n)) for n in tf.__all__]
        objs += [("convert." + n, getattr(convert, n)) for n in convert.__all__]
        for name, obj in objs:
            if inspect.isclass(obj):
                if not obj.__module__.startswith("tokenformer"):
                    continue
                for attr, member in vars(obj).items():
                    if attr.startswith("_") and attr != "__init__":
                        continue
                    if isinstance(member, (classmethod, staticmethod)):
                        member = member.__func__
                    if isinstance(member, property):
                        member = member.fget
                    if inspect.isfunction(member):
                        check(member, "%s.%s" % (name, attr))
            elif inspect.isfunction(obj):
                check(obj, name)
        self.assertEqual(missing, [], "public API without type hints")


if __name__ == "__main__":
    unittest.main()
