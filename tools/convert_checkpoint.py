#!/usr/bin/python3
"""convert_checkpoint.py -- an official TokenFormer checkpoint to the
library's safetensors, from the source tree.

    tools/convert_checkpoint.py TokenFormer-150M/pytorch_model.bin 150m.safetensors \
        --config 150M_eval.yml

The converter is tokenformer.convert of the Python package (installed, it
is the `tf-convert` command); this launcher runs the package of the tree it
sits in (bindings/python) with the library in build/.  --help lists the
options; the module's docstring says what is read and how.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "bindings", "python"))

from tokenformer.convert import main  # noqa: E402  (after the path is set)

if __name__ == "__main__":
    sys.exit(main())
