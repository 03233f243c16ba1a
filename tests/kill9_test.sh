#!/usr/bin/env bash
# kill9_test.sh -- crash safety of checkpoints: a trainer that saves every
# step is killed with SIGKILL at random moments, TRIALS times (each trial
# resumes the run).  After every kill the checkpoint on disk must load in
# full (model and optimizer state) and be the last one saved or the one
# before (its step never goes back); at most one temporary file of the
# target may be left; after the next completed save none is left.
#   tests/kill9_test.sh [build/examples/train] [TRIALS]
set -euo pipefail
train=${1:-build/examples/train}
trials=${2:-30}
PYTHON=${PYTHON:-/usr/bin/python3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
die() { echo "kill9_test: FAIL: $*" >&2; exit 1; }

source "$(dirname "$0")/tiny_config.sh"
tiny_config "$work/tiny.yml" '
  "optimizer": {"type": "Adam", "params": {"lr": 0.003}},
  "train_iters": 100000, "train_micro_batch_size_per_gpu": 2,
  "eval_interval": 100000, "eval_iters": 1, "checkpoint_factor": 1, "log_interval": 1000, "seed": 3'
run=$work/run
ckpt=$run/checkpoint.safetensors

# Prints the step of the checkpoint after loading all of it, or fails.
check_ckpt() {
  PYTHONPATH="$root/bindings/python" "$PYTHON" - "$1" <<'PY'
import sys
import tokenformer as tf
m = tf.Model.open(sys.argv[1])
opt = tf.Optimizer(m)
m.load(sys.argv[1], optimizer=opt)
print(opt.step_count)
PY
}
temps() { find "$run" -maxdepth 1 -name 'checkpoint.safetensors.tmp*' | wc -l; }

last=0 killed_mid=0
for i in $(seq 1 "$trials"); do
  flag=()
  [ -f "$ckpt" ] && flag=(--resume)
  "$train" "$work/tiny.yml" --threads 1 --out "$run" "${flag[@]}" > "$work/out.$i" 2>&1 &
  pid=$!
  # until the first save of this trial, then a random moment within ~0.3 s
  for _ in $(seq 1 200); do
    [ -f "$ckpt" ] && [ "$(stat -c %Y "$ckpt")" -ge "$(date +%s)" ] && break
    sleep 0.02
  done
  sleep "0.$(printf '%03d' $((RANDOM % 300)))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ -f "$ckpt" ] || die "trial $i: no checkpoint after the kill ($(tail -n 3 "$work/out.$i"))"
  step=$(check_ckpt "$ckpt") || die "trial $i: the checkpoint left by a kill does not load"
  [ "$step" -ge "$last" ] || die "trial $i: checkpoint went back from step $last to $step"
  n=$(temps)
  [ "$n" -le 1 ] || die "trial $i: $n temporary files left (stale ones must be cleaned)"
  [ "$n" -eq 0 ] || killed_mid=$((killed_mid + 1))
  last=$step
done
# one more resumed run that completes a save: nothing temporary stays
"$train" "$work/tiny.yml" --threads 1 --out "$run" --resume --steps $((last + 2)) > "$work/out.end" 2>&1 \
  || die "the final resume failed: $(tail -n 3 "$work/out.end")"
[ "$(temps)" -eq 0 ] || die "temporary files left after a completed save: $(ls "$run")"
step=$(check_ckpt "$ckpt")
[ "$step" -eq $((last + 2)) ] || die "final checkpoint at step $step, expected $((last + 2))"
echo "kill9_test: OK ($trials kills, $killed_mid of them mid-save, checkpoint always whole, at step $step)"
