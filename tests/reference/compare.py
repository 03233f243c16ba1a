#!/usr/bin/python3
"""compare.py -- do regenerated fixtures agree with the committed ones?

    compare.py NEW REF        e.g. build/fixtures (from `make fixtures`) and tests/data

For every fixture of REF, NEW must hold the same files: the same .yml text,
the same tensors (names, order, dtypes, shapes) and metadata, inputs
bit-identical (NEW was made from REF's inputs), and every computed tensor
within one float32 ulp per element -- what two float64 computations that
agree to ~1e-12 become after F32 rounding.  It also recomputes REF's outputs
in float64 from REF's own inputs and reports how far the stored F32 values
are from them in ulps (0.5 means each stored value is the rounding of this
reference's value).  The tolerances of tests/data/README.md are reported
beside, per class of tensor.  Exit status 1 on any disagreement.
"""
import glob
import os
import sys

import numpy as np

import make_fixtures as MF
import safetensors_io as st

# the README's tolerances on the metric max|a - b| / (max|b| + 1e-6)
README_TOL = (("step1.", 1e-5), ("grad", 2e-4), ("", 2e-5))
OUTPUTS = ("output", "grad_input", "grad_key_param_tokens", "grad_value_param_tokens",
           "logits", "loss", "grad_norm")
OUTPUT_PREFIXES = ("grad.", "step1.", "logits_", "loss_")
F64_SLACK = 1e-12   # relative to the tensor's largest value: float64 noise


def is_output(name):
    return name in OUTPUTS or name.startswith(OUTPUT_PREFIXES)


def readme_tol(name):
    return next(tol for prefix, tol in README_TOL if name.startswith(prefix))


def ulps(a, b):
    """|a - b| per element in float32 ulps of b (a may be float64)."""
    b32 = np.asarray(b, np.float32)
    spacing = np.spacing(np.abs(b32)).astype(np.float64)
    return np.abs(np.asarray(a, np.float64) - b32.astype(np.float64)) / spacing


class Report:
    def __init__(self):
        self.failures = []

    def fail(self, msg):
        self.failures.append(msg)
        print("FAIL " + msg)


def compare_yaml(new, ref, rep):
    with open(new) as f, open(ref) as g:
        if f.read() != g.read():
            rep.fail(f"{new}: differs from {ref}")


def compare_tensors(new, ref, rep):
    """File against file; returns (identical, worst README metric, worst ulps)."""
    a, ma = st.read(new)
    b, mb = st.read(ref)
    name = os.path.basename(ref)
    if list(a) != list(b):
        rep.fail(f"{name}: tensors {list(a)} != {list(b)}")
        return False, 0.0, 0.0
    if ma != mb:
        diff = sorted(k for k in set(ma) | set(mb) if ma.get(k) != mb.get(k))
        rep.fail(f"{name}: metadata differs in {', '.join(diff)}")
    worst_err = worst_ulps = 0.0
    for k in b:
        if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape:
            rep.fail(f"{name}: {k} is {a[k].dtype}{a[k].shape}, want {b[k].dtype}{b[k].shape}")
            continue
        if not is_output(k):
            if not np.array_equal(a[k], b[k]):
                rep.fail(f"{name}: input {k} differs (it is copied from REF)")
            continue
        err, u = MF.rel(a[k], b[k]), float(np.max(ulps(a[k], b[k])))
        worst_err, worst_ulps = max(worst_err, err / readme_tol(k)), max(worst_ulps, u)
        if u > 1.0:
            rep.fail(f"{name}: {k} differs by {u:.1f} float32 ulps (err {err:.2e})")
    identical = all(np.array_equal(a[k], b[k]) for k in b if k in a)
    return identical, worst_err, worst_ulps


def recompute(spec, ref, rep):
    """Worst distance, in ulps, of REF's stored outputs from this reference's
    float64 values computed from REF's inputs."""
    tensors, _ = MF.BUILDERS[spec["kind"]](spec, MF.read_inputs(spec, ref))
    stored, _ = st.read(ref)
    worst = 0.0
    for k, v in tensors.items():
        if not is_output(k):
            continue
        u = ulps(v, stored[k])
        slack = F64_SLACK * float(np.max(np.abs(v))) / np.spacing(np.abs(stored[k])).astype(np.float64)
        if np.any(u > 0.5 + slack):
            rep.fail(f"{os.path.basename(ref)}: stored {k} is {np.max(u):.3f} ulps from the "
                     "float64 value, not its rounding")
        worst = max(worst, float(np.max(u)))
    return worst


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    new_dir, ref_dir = argv[1], argv[2]
    rep = Report()
    names = {os.path.basename(p) for p in glob.glob(os.path.join(ref_dir, "*.safetensors"))}
    known = {s["name"] + ".safetensors": s for s in MF.SPECS}
    for extra in sorted(names - set(known)):
        rep.fail(f"{ref_dir}/{extra}: no spec in make_fixtures.py makes it")
    print(f"{'fixture':36s} {'vs ' + new_dir:>22s} {'worst err/README tol':>21s} "
          f"{'f64 -> stored':>14s}")
    for fname, spec in known.items():
        new, ref = os.path.join(new_dir, fname), os.path.join(ref_dir, fname)
        if not os.path.exists(ref) or not os.path.exists(new):
            rep.fail(f"{fname}: missing in {ref_dir if not os.path.exists(ref) else new_dir}")
            continue
        if spec["kind"] not in ("pattention", "vision"):
            compare_yaml(new[:-len(".safetensors")] + ".yml", ref[:-len(".safetensors")] + ".yml", rep)
        identical, err, u = compare_tensors(new, ref, rep)
        f64 = recompute(spec, ref, rep)
        same = "bit-identical" if identical else f"<= {u:.0f} ulp"
        print(f"{fname:36s} {same:>22s} {err:21.1e} {f64:10.4f} ulp")
    if rep.failures:
        print(f"{len(rep.failures)} disagreement(s)")
        return 1
    print(f"ok: {new_dir} reproduces {ref_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
