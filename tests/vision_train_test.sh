#!/usr/bin/env bash
# The vision training program end to end on a few hundred Fashion-MNIST
# images: a run stopped at step 6 and resumed (past a growth at step 8)
# must end bit-identical (checkpoint bytes, logged losses) to an
# uninterrupted run; an unknown key is refused naming it.
set -euo pipefail
train=${1:-build/examples/train_vision}
python=${PYTHON:-/usr/bin/python3}
src=/usr/share/datasets/fashion-mnist
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
die() { echo "vision_train_test: FAIL: $*" >&2; exit 1; }
[ -r "$src/train-images-idx3-ubyte.gz" ] || die "no Fashion-MNIST in $src (tools/install-deps installs dataset-fashion-mnist)"

# the first 256 training and 128 test images, as gzip IDX files
"$python" - "$src" "$work" <<'PY'
import gzip, struct, sys
src, out = sys.argv[1:]
for name, n in (("train", 256), ("t10k", 128)):
    with gzip.open(f"{src}/{name}-images-idx3-ubyte.gz") as f:
        head = f.read(16)
        _, count, h, w = struct.unpack(">IIII", head)
        px = f.read(n * h * w)
    with gzip.open(f"{src}/{name}-labels-idx1-ubyte.gz") as f:
        f.read(8)
        lab = f.read(n)
    with gzip.open(f"{out}/{name}-images.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, h, w) + px)
    with gzip.open(f"{out}/{name}-labels.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + lab)
PY
cat > "$work/run.yml" <<YML
train_images: $work/train-images.gz
train_labels: $work/train-labels.gz
test_images: $work/t10k-images.gz
test_labels: $work/t10k-labels.gz
patch_size: 7
hidden_size: 16
num_layers: 2
num_attention_heads: 2
qkv_slot_num: 8
proj_slot_num: 8
ffn_slot_num: 16
patch_slot_num: 16
head_slot_num: 16
batch_size: 32
train_iters: 12
warmup_steps: 2
lr: 0.003
eval_interval: 4
checkpoint_interval: 5
log_interval: 1
grow_at: 8
grow_qkv_slot_num: 12
grow_ffn_slot_num: 24
seed: 5
YML
"$train" --config "$work/run.yml" threads=2 --out "$work/full" > "$work/full.out"
"$train" --config "$work/run.yml" threads=2 stop_at=6 --out "$work/half" > /dev/null
"$train" --config "$work/run.yml" threads=2 --out "$work/half" --resume > "$work/half.out"
grep -q "resumed from .* at step 6" "$work/half.out" || die "the run did not resume at step 6"
grep -q "step 8: grown to qkv 12" "$work/half.out" || die "the resumed run did not grow at step 8"
cmp "$work/full/checkpoint.safetensors" "$work/half/checkpoint.safetensors" \
  || die "resumed checkpoint differs from the uninterrupted run"
diff <(tail -n 6 "$work/full/log.csv" | cut -d, -f1-4) \
     <(tail -n 6 "$work/half/log.csv" | cut -d, -f1-4) || die "logged losses differ"
grep -q "test acc" "$work/full.out" || die "no test accuracy in the progress lines"
if "$train" --config "$work/run.yml" hidden_sise=16 --out "$work/bad" 2> "$work/bad.err"; then
  die "an unknown key was accepted"
fi
grep -q "hidden_sise" "$work/bad.err" || die "the message does not name the key: $(cat "$work/bad.err")"
echo "vision_train_test: OK (resume across growth bit-identical; $(grep 'test acc' "$work/full.out" | tail -1 | sed 's/.*test acc/test acc/'))"
