#!/usr/bin/env bash
# Data-parallel training under mpirun (the trainer built with mpicc, and the
# Python example with mpi4py), on tiny configs:
#   - R = 2 and 3 ranks give the losses of one process with the same global
#     batch, to within float summation order (TOL, relative), and every
#     rank's model (optimizer included) is bit-identical after every step;
#   - the sums overlapped with backward (allreduce_bucket_mb) give the same;
#   - resume: bit-exact with the rank count unchanged, and across a change of
#     rank count (saved with 2, resumed with 1 and with 3) within TOL;
#   - growth during a data-parallel run: identical on every rank, optimizer
#     state included, and the one-process losses;
#   - SIGINT to one rank: every rank stops at the same step, rank 0 saves
#     once; Ctrl-C at a terminal (SIGINT to mpirun and every rank) the same; a rank killed
#     with SIGKILL ends the job with a message instead of a hang; a batch
#     that does not split over the ranks is refused;
#   - bindings/python/examples/train_data_parallel.py with 2 ranks.
# Skips (exit 0, with a message) without mpirun or an MPI-built trainer.
set -euo pipefail
train=${1:-build/examples/train}
PYTHON=${PYTHON:-/usr/bin/python3}
TOL=${TOL:-1e-5}   # losses, relative
PTOL=${PTOL:-1e-4} # parameters and moments: max |a - b| / max |b| per tensor
cd "$(dirname "$0")/.."
die() { echo "mpi_test: FAIL: $*" >&2; exit 1; }
if ! command -v mpirun > /dev/null; then
  echo "mpi_test: SKIP: no mpirun (tools/install-deps installs openmpi-bin)"; exit 0
fi
if ! ldd "$train" | grep libmpi > /dev/null; then # not -q: ldd must not get SIGPIPE
  echo "mpi_test: SKIP: $train was built without MPI (no mpicc at build time?)"; exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mpirun=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
run() { # run R OUT CONFIG [trainer args...]: R ranks, one thread each
  local r=$1 out=$2 cfg=$3; shift 3
  timeout 120 "${mpirun[@]}" -np "$r" "$train" "$cfg" --threads 1 --out "$work/$out" "$@" \
    > "$work/$out.out" 2>&1 || { cat "$work/$out.out"; die "$out: the run failed"; }
}
# close A B [FROM] [TO]: the loss and validation columns of two log.csv agree
# within TOL (relative) on rows FROM..TO; prints the largest difference.
close() {
  "$PYTHON" - "$work/$1/log.csv" "$work/$2/log.csv" "$TOL" "${3:-1}" "${4:-1000000}" <<'PY'
import csv, sys
a, b, tol, lo, hi = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def rows(p):
    return {int(r["step"]): r for r in csv.DictReader(open(p)) if lo <= int(r["step"]) <= hi}
ra, rb = rows(a), rows(b)
if sorted(ra) != sorted(rb) or not ra:
    sys.exit("steps differ: %s vs %s" % (sorted(ra), sorted(rb)))
worst = 0.0
for s in ra:
    for k in ("loss", "val_loss"):
        x, y = ra[s][k], rb[s][k]
        if (x == "") != (y == ""):
            sys.exit("step %d: %s given in one log only" % (s, k))
        if x:
            rel = abs(float(x) - float(y)) / abs(float(y))
            worst = max(worst, rel)
            if rel > tol:
                sys.exit("step %d: %s %s vs %s (relative %.2g > %g)" % (s, k, x, y, rel, tol))
print("%.2g" % worst)
PY
}
# same_params A B: the final checkpoints of two runs agree within PTOL;
# prints the largest difference.
same_params() {
  "$PYTHON" - "$work/$1/checkpoint.safetensors" "$work/$2/checkpoint.safetensors" "$PTOL" <<'PY'
import sys
sys.path.insert(0, "bindings/python/tests")
import helpers
import numpy as np
a, b, tol = helpers.SafeTensors(sys.argv[1]), helpers.SafeTensors(sys.argv[2]), float(sys.argv[3])
if sorted(a.tensors) != sorted(b.tensors):
    sys.exit("the checkpoints hold different tensors")
worst = 0.0
for k in a.tensors:
    x, y = a[k].astype(np.float64), b[k].astype(np.float64)
    e = np.abs(x - y).max() / (np.abs(y).max() + 1e-30)
    if e > tol:
        sys.exit("%s: relative difference %.2g > %g" % (k, e, tol))
    worst = max(worst, e)
print("%.2g" % worst)
PY
}
source tests/tiny_config.sh
base='"optimizer": {"type": "Adam", "params": {"lr": 0.003, "betas": [0.9, 0.95], "eps": 1.0e-8}},
  "min_lr": 0.0003, "warmup": 0.2, "train_iters": 10,
  "train_micro_batch_size_per_gpu": 6, "gradient_accumulation_steps": 2,
  "eval_interval": 5, "eval_iters": 3, "checkpoint_factor": 5, "log_interval": 1, "seed": 3,
  "replica_check_interval": 1'
tiny_config "$work/tiny.yml" "$base"
tiny_config "$work/overlap.yml" "$base, \"allreduce_bucket_mb\": 0.01"
tiny_config "$work/grow.yml" "$base,
  \"grow_schedule\": [{\"step\": 3, \"qkv\": 20, \"ffn\": 40}, {\"step\": 7, \"proj\": 24}]"

# ---- equivalence ---------------------------------------------------------------
run 1 r1 "$work/tiny.yml"
run 2 r2 "$work/tiny.yml"
run 3 r3 "$work/tiny.yml"
run 2 o2 "$work/overlap.yml"
grep -q "data parallel: 2 ranks" "$work/r2.out" || die "the 2-rank run did not run data-parallel"
e2=$(close r2 r1) || die "2 ranks vs 1: $e2"
e3=$(close r3 r1) || die "3 ranks vs 1: $e3"
eo=$(close o2 r1) || die "2 ranks, overlapped sums, vs 1: $eo"
p2=$(same_params r2 r1) || die "2 ranks vs 1, parameters: $p2"
p3=$(same_params r3 r1) || die "3 ranks vs 1, parameters: $p3"

# ---- resume ---------------------------------------------------------------------
run 2 h2 "$work/tiny.yml" --steps 5
cp -r "$work/h2" "$work/h1"
cp -r "$work/h2" "$work/h3"
run 2 h2 "$work/tiny.yml" --resume
grep -q "resumed from .* at step 5" "$work/h2.out" || die "the 2-rank run did not resume at step 5"
cmp "$work/r2/checkpoint.safetensors" "$work/h2/checkpoint.safetensors" \
  || die "2 ranks: the resumed checkpoint differs from the uninterrupted run's"
diff <(cut -d, -f1-3,5 "$work/r2/log.csv") <(cut -d, -f1-3,5 "$work/h2/log.csv") \
  || die "2 ranks: the resumed run's losses differ from the uninterrupted run's"
run 1 h1 "$work/tiny.yml" --resume
run 3 h3 "$work/tiny.yml" --resume
eh1=$(close h1 r2 6) || die "saved with 2 ranks, resumed with 1: $eh1"
eh3=$(close h3 r2 6) || die "saved with 2 ranks, resumed with 3: $eh3"

# ---- growth ---------------------------------------------------------------------
run 1 g1 "$work/grow.yml"
run 3 g3 "$work/grow.yml"
grep -q "grew to qkv 20, proj 16, ffn 40" "$work/g3.out" || die "3 ranks: no growth at step 3"
grep -q "grew to qkv 20, proj 24, ffn 40" "$work/g3.out" || die "3 ranks: no growth at step 7"
eg=$(close g3 g1) || die "growth, 3 ranks vs 1: $eg"
run 2 gh "$work/grow.yml" --steps 5
run 2 gh "$work/grow.yml" --resume
run 2 g2 "$work/grow.yml"
cmp "$work/g2/checkpoint.safetensors" "$work/gh/checkpoint.safetensors" \
  || die "growth, 2 ranks: the resumed checkpoint differs from the uninterrupted run's"

# ---- interruption, a killed rank, a batch that does not split ---------------------
tiny_config "$work/long.yml" "${base/\"train_iters\": 10/\"train_iters\": 100000}"
# Ctrl-C makes mpirun send every rank SIGCONT, SIGTERM after
# odls_base_sigkill_timeout seconds and SIGKILL after twice that: the
# trainer saves on SIGTERM, within that grace.
start_long() { # OUT: 2 ranks on the long config, in the background; sets pid
  "${mpirun[@]}" --mca odls_base_sigkill_timeout 5 -np 2 "$train" "$work/long.yml" \
    --threads 1 --out "$work/$1" > "$work/$1.out" 2>&1 &
  pid=$!
  for _ in $(seq 200); do
    [ -s "$work/$1/log.csv" ] && [ "$(wc -l < "$work/$1/log.csv")" -ge 3 ] && return 0
    sleep 0.1
  done
  kill -KILL "$pid"; die "$1: the run did not start: $(cat "$work/$1.out")"
}
rank_pid() { ps -o pid= --ppid "$pid" | tail -n 1 | tr -d ' '; } # a rank, not rank 0's
finishes() { # PID SECONDS: the process ends within SECONDS; its status in $status
  for _ in $(seq $((10 * $2))); do
    if ! kill -0 "$1" 2> /dev/null; then wait "$1" && status=0 || status=$?; return 0; fi
    sleep 0.1
  done
  return 1
}
start_long int1
kill -INT "$(rank_pid)"
finishes "$pid" 30 || { kill -KILL "$pid"; die "SIGINT to one rank: the job did not stop"; }
[ "$status" -eq 0 ] || die "SIGINT to one rank: status $status: $(cat "$work/int1.out")"
step=$(sed -n 's/^interrupted at step \([0-9]*\):.*/\1/p' "$work/int1.out")
[ -n "$step" ] || die "SIGINT to one rank: no 'interrupted at step' line: $(cat "$work/int1.out")"
[ "$(tail -n 1 "$work/int1/log.csv" | cut -d, -f1)" = "$step" ] || die "SIGINT: log and step differ"
"$PYTHON" - "$work/int1/checkpoint.safetensors" "$step" <<'PY' || die "SIGINT: the checkpoint is not that of step $step"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
meta = json.loads(raw[8:8 + n])["__metadata__"]
steps = [v for k, v in meta.items() if k.endswith("step")]
sys.exit(0 if sys.argv[2] in steps else "metadata steps %s" % steps)
PY

start_long int2
# Ctrl-C at a terminal: SIGINT to the whole foreground group, mpirun and ranks
kill -INT "$pid" $(ps -o pid= --ppid "$pid")
finishes "$pid" 30 || { kill -KILL "$pid"; die "Ctrl-C: the job did not stop"; }
grep -q "^interrupted at step" "$work/int2.out" || die "Ctrl-C: no checkpoint: $(cat "$work/int2.out")"

start_long int3
kill -USR1 "$pid" # mpirun forwards SIGUSR1 to every rank at once
finishes "$pid" 30 || { kill -KILL "$pid"; die "SIGUSR1 to mpirun: the job did not stop"; }
[ "$status" -eq 0 ] || die "SIGUSR1 to mpirun: status $status: $(cat "$work/int3.out")"
grep -q "^interrupted at step" "$work/int3.out" || die "SIGUSR1 to mpirun: no checkpoint: $(cat "$work/int3.out")"

start_long crash
kill -KILL "$(rank_pid)"
finishes "$pid" 30 || { kill -KILL "$pid"; die "a killed rank: the job hangs"; }
[ "$status" -ne 0 ] || die "a killed rank: the job reported success"
grep -qi "signal 9\|killed" "$work/crash.out" || die "a killed rank: no message: $(cat "$work/crash.out")"

tiny_config "$work/odd3.yml" "${base/\"train_micro_batch_size_per_gpu\": 6/\"train_micro_batch_size_per_gpu\": 4}"
if timeout 60 "${mpirun[@]}" -np 3 "$train" "$work/odd3.yml" --threads 1 --out "$work/odd3" \
    > "$work/odd3.out" 2>&1; then die "a batch of 4 x 2 over 3 ranks accepted"; fi
grep -q "does not split evenly over 3 ranks" "$work/odd3.out" \
  || die "an uneven split: no message: $(cat "$work/odd3.out")"

# ---- Python, mpi4py -------------------------------------------------------------
if "$PYTHON" -c "import mpi4py" 2> /dev/null; then
  py=(bindings/python/examples/train_data_parallel.py --steps 8 --batch 4 --accum 1 --seq 32
      --text tests/data/README.md --check-every 1)
  timeout 120 "${mpirun[@]}" -np 1 "$PYTHON" "${py[@]}" > "$work/py1.out" 2>&1 \
    || { cat "$work/py1.out"; die "Python, 1 rank"; }
  timeout 120 "${mpirun[@]}" -np 2 "$PYTHON" "${py[@]}" --overlap --bucket 4096 \
    > "$work/py2.out" 2>&1 || { cat "$work/py2.out"; die "Python, 2 ranks"; }
  ep=$("$PYTHON" - "$work/py1.out" "$work/py2.out" "$TOL" <<'PY'
import re, sys
def losses(p):
    return [float(m.group(1)) for m in re.finditer(r"^step \d+ loss (\S+)", open(p).read(), re.M)]
a, b, tol = losses(sys.argv[1]), losses(sys.argv[2]), float(sys.argv[3])
if len(a) != 8 or len(a) != len(b):
    sys.exit("steps: %d vs %d" % (len(a), len(b)))
worst = max(abs(x - y) / abs(x) for x, y in zip(a, b))
if worst > tol:
    sys.exit("relative difference %.2g > %g" % (worst, tol))
print("%.2g" % worst)
PY
) || die "Python, 2 ranks vs 1: $ep"
else
  ep="skipped (no mpi4py)"
fi
echo "mpi_test: OK (largest relative loss difference vs one process: 2 ranks $e2, 3 ranks $e3," \
     "overlapped $eo, resumed 2->1 $eh1, 2->3 $eh3, growth $eg, Python $ep; tolerance $TOL;" \
     "parameters after 10 steps: 2 ranks $p2, 3 ranks $p3, tolerance $PTOL)"
