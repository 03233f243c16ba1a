#!/usr/bin/env bash
# The trainer end to end: a run interrupted at step 5 and resumed must end
# bit-identical (checkpoint bytes, logged losses) to an uninterrupted run;
# a bad config is refused with a message naming the key.
set -euo pipefail
train=${1:-build/examples/train}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
die() { echo "trainer_test: FAIL: $*" >&2; exit 1; }

source "$(dirname "$0")/tiny_config.sh"
tiny_config "$work/tiny.yml" '
  "optimizer": {"type": "Adam", "params": {"lr": 0.003, "betas": [0.9, 0.95], "eps": 1.0e-8}},
  "min_lr": 0.0003, "warmup": 0.2, "train_iters": 10,
  "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 2,
  "eval_interval": 5, "eval_iters": 2, "checkpoint_factor": 5, "log_interval": 1, "seed": 3'
"$train" "$work/tiny.yml" --threads 2 --out "$work/full" > "$work/full.out"
"$train" "$work/tiny.yml" --threads 2 --out "$work/half" --steps 5 > /dev/null
"$train" "$work/tiny.yml" --threads 2 --out "$work/half" --resume > "$work/half.out"
grep -q "resumed from .* at step 5" "$work/half.out" || die "the run did not resume at step 5"
cmp "$work/full/checkpoint.safetensors" "$work/half/checkpoint.safetensors" \
  || die "resumed checkpoint differs from the uninterrupted run"
# steps 6..10: step, loss, lr and validation loss identical
diff <(sed -n '7,11p' "$work/full/log.csv" | cut -d, -f1-3,5) \
     <(tail -n 5 "$work/half/log.csv" | cut -d, -f1-3,5) || die "logged losses differ"
# loss falls over the run
first=$(sed -n 2p "$work/full/log.csv" | cut -d, -f2)
last=$(sed -n 11p "$work/full/log.csv" | cut -d, -f2)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' || die "loss did not fall ($first -> $last)"

sed 's/"hidden_size": 32/"hidden_size": 33/' "$work/tiny.yml" > "$work/bad.yml"
if "$train" "$work/bad.yml" --out "$work/bad" 2> "$work/bad.err"; then die "bad config accepted"; fi
grep -q "hidden_size" "$work/bad.err" || die "bad config message does not name the key: $(cat "$work/bad.err")"
echo "trainer_test: OK (resume bit-identical, loss $first -> $last)"
