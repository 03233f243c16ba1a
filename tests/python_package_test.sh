#!/usr/bin/env bash
# python_package_test.sh -- bindings/python installs with pip, offline, with
# Debian's pip and setuptools, and the installed package works from any
# directory.
#
#   tests/python_package_test.sh        (make check runs it; PYTHON may be set)
#
# 1. A venv with the system site packages (Debian's numpy, setuptools, pip,
#    mypy; Debian's pip refuses system-wide installs, PEP 668) and no pip
#    of its own.
# 2. $venv/bin/python -m pip install --no-build-isolation --no-index
#    ./bindings/python -- the README's command; setup.py bundles build/'s
#    library into the package.
# 3. From an empty directory, without TOKENFORMER_LIBRARY or LD_LIBRARY_PATH:
#    import, the library loaded is the one inside the installed package, a
#    forward; the installed tf-convert command converts a committed PyTorch
#    checkpoint and Model.open of the result gives PyTorch's logits.
# 4. mypy on user code: the installed package is typed (py.typed), a
#    misspelt constructor keyword and a wrong result type are errors, the
#    correct code is clean.
# 5. pip uninstall removes the package and the command.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
PYTHON=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
# setuptools builds in the tree: remove what it leaves unless it was there before
leftovers=()
for d in bindings/python/build bindings/python/tokenformer.egg-info; do
  [ -e "$d" ] || leftovers+=("$root/$d")
done
cleanup() { rm -rf "$tmp" "${leftovers[@]}"; }
trap cleanup EXIT
say() { echo "python_package_test: $*"; }
die() { echo "python_package_test: FAIL: $*" >&2; exit 1; }
unset TOKENFORMER_LIBRARY LD_LIBRARY_PATH
[ -e build/libtokenformer.so.0 ] || die "build/libtokenformer.so.0 is missing: run make first"

# ---- 1-2. venv and pip install ------------------------------------------------
"$PYTHON" -m venv --system-site-packages --without-pip "$tmp/venv" || die "python3 -m venv"
venv=$tmp/venv
"$venv/bin/python" -m pip install --no-build-isolation --no-index --disable-pip-version-check \
  ./bindings/python > "$tmp/pip.log" 2>&1 || { cat "$tmp/pip.log"; die "pip install"; }
grep -q "Successfully installed tokenformer" "$tmp/pip.log" || { cat "$tmp/pip.log"; die "pip install"; }
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[ -f "$site/tokenformer/libtokenformer.so.0" ] || die "the library was not installed into the package"
[ -f "$site/tokenformer/py.typed" ] || die "py.typed was not installed"
[ -x "$venv/bin/tf-convert" ] || die "the tf-convert command was not installed"
say "installed into $site"

# ---- 3. use from elsewhere ---------------------------------------------------------
mkdir "$tmp/elsewhere"
cd "$tmp/elsewhere"
"$venv/bin/tf-convert" "$root/tests/data/torch/tiny_fp16.pt" tiny.safetensors \
  --config "$root/tests/data/torch/tiny.yml" > convert.log || { cat convert.log; die "tf-convert"; }
VENV=$venv DATA=$root/tests/data/torch PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" - <<'EOF' \
  || die "the installed package does not work"
import json, os
import numpy as np
import tokenformer as tf
venv = os.environ["VENV"]
assert tf.__file__.startswith(venv), tf.__file__
assert tf.library_path.startswith(venv), tf.library_path
with tf.Model(num_layers=1, hidden_size=16, num_attention_heads=2, qkv_slot_num=8,
              proj_slot_num=8, ffn_slot_num=16, seq_length=8) as m:
    loss = m.loss(tf.bytes_to_tokens("Hell"), tf.bytes_to_tokens("ello"))
    assert np.isfinite(loss)
tokens = np.array(json.load(open(os.path.join(os.environ["DATA"], "manifest.json")))["tokens"])
ref = np.load(os.path.join(os.environ["DATA"], "logits_fp16.npy"))
with tf.Model.open("tiny.safetensors") as m:
    err = np.abs(m.logits(tokens) - ref).max() / np.abs(ref).max()
assert err < 1e-5, err
print("python_package_test: import from %s, library %s; tf-convert + Model.open: logits "
      "within %.1e of PyTorch's" % (os.getcwd(), tf.library_path, err))
EOF

# ---- 4. the types, as a type checker sees them from outside ----------------------------
cat > good.py <<'EOF'
import numpy as np
import tokenformer as tf
from tokenformer.convert import ConversionReport, convert_state_dict

with tf.Model(num_layers=1, hidden_size=16, num_attention_heads=2, seq_length=8) as m:
    logits: np.ndarray = m.logits(tf.bytes_to_tokens("Hi"))
    layers: int = m.num_layers
    s = m.pattention(0, "ffn")
    tau: float = s.tau
opt_params = tf.OptimizerParams(lr=1e-3, warmup_steps=10)
def conv() -> ConversionReport:
    return convert_state_dict({}, "x.safetensors", num_attention_heads=2)
EOF
cat > bad.py <<'EOF'
import tokenformer as tf

m = tf.Model(hidden_sise=16)
name: str = m.num_params
EOF
mypy=("$venv/bin/python" -m mypy --cache-dir "$tmp/mypy" --no-error-summary)
"${mypy[@]}" good.py > good.log 2>&1 || { cat good.log; die "mypy rejects correct use of the package"; }
if "${mypy[@]}" bad.py > bad.log 2>&1; then die "mypy accepts a misspelt keyword"; fi
grep -q 'Unexpected keyword argument "hidden_sise" for "Model"' bad.log || { cat bad.log; die "mypy: keyword"; }
grep -q 'Incompatible types in assignment (expression has type "int", variable has type "str")' \
  bad.log || { cat bad.log; die "mypy: result type"; }
say "mypy sees the installed package's types (a misspelt keyword and a wrong type are errors)"
cd "$root"

# ---- 5. uninstall -----------------------------------------------------------------------
"$venv/bin/python" -m pip uninstall -y tokenformer > "$tmp/uninstall.log" 2>&1 \
  || { cat "$tmp/uninstall.log"; die "pip uninstall"; }
[ ! -e "$site/tokenformer" ] || die "pip uninstall left $site/tokenformer"
[ ! -e "$venv/bin/tf-convert" ] || die "pip uninstall left tf-convert"
say "OK"
