#!/usr/bin/env bash
# The growth tooling end to end, with the shipped recipe's defaults:
# - the trainer grown at a step keeps the function (validation loss right
#   after growth equals the one right before), takes the lr back to the
#   peak and down to min_lr / 10, and ramps tau to the new size's default
#   (read back from the checkpoints mid-ramp and after it);
# - the logged training FLOPs follow 6N + 12LTd per token at each step's size;
# - a run interrupted before, at and after the growth and resumed ends
#   bit-identical to the uninterrupted run, with one growth and with two;
# - examples/grow on a checkpoint, then `train --resume` at the grown size,
#   is the same run as growing inside the trainer (schedule continued,
#   pinned tau, AdamW carried): identical checkpoints;
# - examples/grow refuses shrinking and a truncated file, and leaves OUT
#   alone.
set -euo pipefail
bin=${1:-build/examples}
py=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT; [ -n "${KEEP:-}" ] && echo "work: $work"
die() { echo "growth_tools_test: FAIL: $*" >&2; exit 1; }

source "$(dirname "$0")/tiny_config.sh"
# the tiny config's training keys + extra keys ($2: ", KEY: VALUE, ...") -> $1
config() {
  tiny_config "$1" '
  "optimizer": {"type": "Adam", "params": {"lr": 0.003, "betas": [0.9, 0.95], "eps": 1.0e-8}},
  "min_lr": 0.0003, "warmup_steps": 2, "train_iters": 10, "train_micro_batch_size_per_gpu": 4,
  "eval_interval": 5, "eval_iters": 2, "checkpoint_factor": 100, "log_interval": 1,
  "seed": 3'"$2"
}
# a checkpoint's metadata value, or a tensor's shape ("[24, 32]")
meta() {
  "$py" - "$1" "$2" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
k = sys.argv[2]
print(h["__metadata__"][k] if k in h.get("__metadata__", {}) else h[k]["shape"])
PY
}
# the lr logged at step $2 in log.csv $1
lr_at() { awk -F, -v s="$2" '$1 == s { print $3 }' "$1"; }
close() { awk -v a="$1" -v b="$2" -v tol="$3" 'BEGIN { d = a - b; exit !(d <= tol && -d <= tol) }'; }

grow='"grow_at_step": 4, "grow_qkv_slot_num": 24, "grow_proj_slot_num": 24, "grow_ffn_slot_num": 48, "grow_tau_ramp": 3'
config "$work/grow.yml" ", $grow"
q0=layers.0.attention.query

# ---- the trainer's growth with the recipe's defaults --------------------------
"$bin/train" "$work/grow.yml" --threads 1 --out "$work/full" > "$work/full.out"
grep -q "ramped tau, carried optimizer, restarted lr" "$work/full.out" \
  || die "the trainer's defaults are not the recipe: $(grep growth "$work/full.out")"
IFS=, read -r step _ _ _ _ _ _ before after < <(sed -n 2p "$work/full/growth.csv")
[ "$step" = 4 ] || die "growth.csv: grew at step $step, not 4"
[ "$before" = "$after" ] || die "validation loss changed at growth: $before -> $after"
[ "$(meta "$work/full/checkpoint.safetensors" "$q0.key_param_tokens")" = "[24, 32]" ] \
  || die "the final checkpoint does not have the grown size"
lr4=$(lr_at "$work/full/log.csv" 4) lr5=$(lr_at "$work/full/log.csv" 5)
lr10=$(lr_at "$work/full/log.csv" 10)
awk -v a="$lr4" -v b="$lr5" 'BEGIN { exit !(b > a) }' || die "lr did not go back up: $lr4 -> $lr5"
close "$lr5" 0.003 3e-4 || die "lr after growth $lr5, not near the peak 0.003"
close "$lr10" 3e-5 1e-10 || die "final lr $lr10, not min_lr / 10 = 3e-05"
# training FLOPs (the experiment's measure): 6N + 12 L T d per token, N the
# weights entering a matmul (every key and value token, the tied embedding
# once), at the size of each step; B T = 128 tokens a step
flops_per_step() {  # qkv proj ffn slots -> FLOPs of one step
  echo $(( (6 * (2 * (2 * (3 * $1 + $2 + $3) * 32) + 256 * 32) + 12 * 2 * 32 * 32) * 128 ))
}
small_step=$(flops_per_step 16 16 32) large_step=$(flops_per_step 24 24 48)
f4=$(awk -F, '$1 == 4 { print $6 }' "$work/full/log.csv")
f10=$(awk -F, '$1 == 10 { print $6 }' "$work/full/log.csv")
close "$f4" $((4 * small_step)) $((4 * small_step / 100000)) \
  || die "FLOPs after 4 steps: $f4, not $((4 * small_step))"
close "$f10" $((4 * small_step + 6 * large_step)) $((10 * large_step / 100000)) \
  || die "FLOPs after 10 steps (grown at 4): $f10, not $((4 * small_step + 6 * large_step))"
# tau: sqrt(16) at growth, ramped over 3 steps to sqrt(24), then kept
tau_end=$(meta "$work/full/checkpoint.safetensors" "pattention.$q0.tau")
close "$tau_end" "$(awk "BEGIN { printf \"%.17g\", sqrt(24) }")" 1e-12 || die "tau after the ramp: $tau_end"

# ---- resume before, at and after the growth: bit-identical --------------------
for k in 2 4 6; do
  "$bin/train" "$work/grow.yml" --threads 1 --out "$work/r$k" --steps $k > /dev/null
  if [ $k = 6 ]; then  # mid-ramp: tau = 4 + (sqrt(24) - 4) * 2/3
    tau6=$(meta "$work/r6/checkpoint.safetensors" "pattention.$q0.tau")
    close "$tau6" "$(awk "BEGIN { printf \"%.17g\", 4 + (sqrt(24) - 4) * 2 / 3 }")" 1e-12 \
      || die "tau mid-ramp (step 6): $tau6"
  fi
  "$bin/train" "$work/grow.yml" --threads 1 --out "$work/r$k" --resume > "$work/r$k.out"
  cmp -s "$work/full/checkpoint.safetensors" "$work/r$k/checkpoint.safetensors" \
    || die "interrupted at step $k and resumed: the checkpoint differs"
  # (the stopped run validates at its last step: the val_loss column may differ there)
  diff <(cut -d, -f1-3,6 "$work/full/log.csv") <(cut -d, -f1-3,6 "$work/r$k/log.csv") \
    > /dev/null || die "interrupted at step $k and resumed: log.csv differs"
  cmp -s "$work/full/growth.csv" "$work/r$k/growth.csv" \
    || die "interrupted at step $k and resumed: growth.csv differs"
done

# ---- two growths (grow_schedule), as the shipped recipe runs them -------------
config "$work/two.yml" ', "grow_schedule": [{"step": 3, "qkv": 20, "proj": 20, "ffn": 40},
  {"step": 6, "qkv": 24, "proj": 24, "ffn": 48}], "grow_tau_ramp": 2'
"$bin/train" "$work/two.yml" --threads 1 --out "$work/two" > /dev/null
[ "$(tail -n +2 "$work/two/growth.csv" | cut -d, -f1,5-7 | tr '\n' ' ')" = "3,20,20,40 6,24,24,48 " ] \
  || die "two growths: growth.csv says $(cat "$work/two/growth.csv")"
tail -n +2 "$work/two/growth.csv" | awk -F, '$8 != $9 { exit 1 }' \
  || die "two growths: the validation loss changed at a growth: $(cat "$work/two/growth.csv")"
tau_two=$(meta "$work/two/checkpoint.safetensors" "pattention.$q0.tau")
close "$tau_two" "$(awk "BEGIN { printf \"%.17g\", sqrt(24) }")" 1e-12 \
  || die "two growths: tau after the second ramp: $tau_two"
for k in 4 7; do
  "$bin/train" "$work/two.yml" --threads 1 --out "$work/two$k" --steps $k > /dev/null
  "$bin/train" "$work/two.yml" --threads 1 --out "$work/two$k" --resume > /dev/null
  cmp -s "$work/two/checkpoint.safetensors" "$work/two$k/checkpoint.safetensors" \
    || die "two growths, interrupted at step $k and resumed: the checkpoint differs"
done

# ---- offline growth + resume == growth inside the trainer ---------------------
# the trainer: pinned tau, schedule continued, AdamW carried; its new values
# are seeded with seed + 7919 at the first growth
config "$work/inproc.yml" ", $grow, \"grow_scale\": \"pinned\", \"grow_lr_schedule\": \"continue\""
"$bin/train" "$work/inproc.yml" --threads 1 --out "$work/inproc" > /dev/null
config "$work/small.yml" ""
"$bin/train" "$work/small.yml" --threads 1 --out "$work/off" --steps 4 > /dev/null
sed -e 's/"qkv_slot_num": 16/"qkv_slot_num": 24/' -e 's/"proj_slot_num": 16/"proj_slot_num": 24/' \
    -e 's/"ffn_slot_num": 32/"ffn_slot_num": 48/' "$work/small.yml" > "$work/large.yml"
"$bin/grow" "$work/off/checkpoint.safetensors" "$work/off/checkpoint.safetensors" \
  --config "$work/large.yml" --seed 7922 > "$work/grow.out" || die "grow failed: $(cat "$work/grow.out")"
[ "$(meta "$work/off/checkpoint.safetensors" optimizer.step)" = 4 ] \
  || die "the grown checkpoint lost the optimizer's step count"
"$bin/train" "$work/large.yml" --threads 1 --out "$work/off" --resume > "$work/off.out" \
  || die "train --resume on the grown checkpoint failed: $(cat "$work/off.out")"
grep -q "resumed from .* at step 4" "$work/off.out" || die "did not resume at step 4"
cmp -s "$work/inproc/checkpoint.safetensors" "$work/off/checkpoint.safetensors" \
  || die "examples/grow + resume differs from growing inside the trainer"

# ---- refusals -------------------------------------------------------------------
cp "$work/full/checkpoint.safetensors" "$work/keep.safetensors"
if "$bin/grow" "$work/full/checkpoint.safetensors" "$work/keep.safetensors" --qkv 8 \
    2> "$work/shrink.err"; then die "shrinking accepted"; fi
grep -qi "shrink\|smaller\|grow" "$work/shrink.err" || die "no reason given: $(cat "$work/shrink.err")"
cmp -s "$work/full/checkpoint.safetensors" "$work/keep.safetensors" || die "a refused grow wrote OUT"
head -c 2000 "$work/full/checkpoint.safetensors" > "$work/cut.safetensors"
if "$bin/grow" "$work/cut.safetensors" "$work/keep.safetensors" --qkv 32 2> "$work/cut.err"; then
  die "a truncated checkpoint accepted"
fi
[ -s "$work/cut.err" ] || die "a truncated checkpoint refused without a message"
cmp -s "$work/full/checkpoint.safetensors" "$work/keep.safetensors" || die "a refused grow wrote OUT"

echo "growth_tools_test: OK (val $before -> $after at growth; lr $lr4 -> $lr5 ... $lr10;" \
     "tau $tau6 mid-ramp, $tau_end after; resume at 2/4/6, two growths and grow+resume bit-identical)"
