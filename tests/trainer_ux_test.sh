#!/usr/bin/env bash
# The trainer and generate as a new user meets them:
# - a run directory that holds a run is refused without --resume/--force,
#   and left as it was; --force says what it removes and starts over (the
#   same bytes as a run in a new directory); --resume and --force together,
#   --resume with nothing to resume, bad --steps values are refused;
# - misspelt keys are warned about with a "did you mean"; an official
#   GPT-NeoX config (150M_train_pile.yml with every key kept, sizes made
#   tiny) trains without a single warning; `--help` lists the keys with
#   their defaults and says what --steps means;
# - data: llm.c shard sets (v7 uint32 and v1 uint16) as a directory, a
#   list and a glob, with val_path; the data line names each format; a
#   resumed shard run is bit-identical; a directory of text files still
#   works; val_path with val_fraction, or with a text directory, is refused;
# - loss.png is a PNG after a run, no temporary is left, and a missing or
#   failing gnuplot is one warning, never an error;
# - non-finite steps: an absurd lr is refused by the config; a checkpoint
#   whose weights overflow the loss makes every step non-finite: each is
#   skipped with a warning, the run stops after max_nonfinite_steps in a
#   row without saving, naming the last good checkpoint and its step;
# - generate refuses --top-p outside [0, 1], --temperature < 0, --top-k < 0
#   and values that are not numbers.
#   tests/trainer_ux_test.sh [build/examples]
set -euo pipefail
bin=${1:-build/examples}
train=$bin/train
py=${PYTHON:-/usr/bin/python3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT; [ -n "${KEEP:-}" ] && echo "work: $work"
die() { echo "trainer_ux_test: FAIL: $*" >&2; exit 1; }
# runs "$@" expecting failure; its stderr is in $work/err
refused() { if "$@" > "$work/out" 2> "$work/err"; then die "accepted: $*"; fi; }
expect_err() { grep -qF -- "$1" "$work/err" || die "no '$1' in the message: $(cat "$work/err")"; }

source "$(dirname "$0")/tiny_config.sh"
keys='"optimizer": {"type": "Adam", "params": {"lr": 0.003}},
  "min_lr": 0.0003, "warmup_steps": 1, "train_iters": 4, "train_micro_batch_size_per_gpu": 2,
  "eval_interval": 2, "eval_iters": 1, "checkpoint_factor": 2, "log_interval": 1, "seed": 5'
tiny_config "$work/tiny.yml" "$keys"

# ---- the run directory: refused, --force, --resume ---------------------------------
"$train" "$work/tiny.yml" --threads 1 --out "$work/run" --steps 2 > /dev/null
cp "$work/run/checkpoint.safetensors" "$work/ckpt.keep"
cp "$work/run/log.csv" "$work/log.keep"
refused "$train" "$work/tiny.yml" --threads 1 --out "$work/run"
expect_err "already holds a run"; expect_err "checkpoint.safetensors at step 2"
expect_err "--resume"; expect_err "--force"
cmp -s "$work/run/checkpoint.safetensors" "$work/ckpt.keep" || die "a refused run changed the checkpoint"
cmp -s "$work/run/log.csv" "$work/log.keep" || die "a refused run changed log.csv"
refused "$train" "$work/tiny.yml" --out "$work/run" --resume --force; expect_err "not both"
"$train" "$work/tiny.yml" --threads 1 --out "$work/run" --force > "$work/force.out"
grep -qF "removed checkpoint.safetensors at step 2, log.csv, loss.png from $work/run" \
  "$work/force.out" || die "--force does not say what it removes: $(head -n 2 "$work/force.out")"
"$train" "$work/tiny.yml" --threads 1 --out "$work/fresh" > /dev/null
cmp -s "$work/run/checkpoint.safetensors" "$work/fresh/checkpoint.safetensors" \
  || die "--force did not start over (differs from a run in a new directory)"
diff <(cut -d, -f1-3,5 "$work/run/log.csv") <(cut -d, -f1-3,5 "$work/fresh/log.csv") > /dev/null \
  || die "--force: log.csv is not the new run's"
# a crash before the first save leaves a log and no checkpoint
mkdir "$work/crashed"; cp "$work/log.keep" "$work/crashed/log.csv"
refused "$train" "$work/tiny.yml" --out "$work/crashed"; expect_err "log.csv"
refused "$train" "$work/tiny.yml" --out "$work/crashed" --resume
expect_err "no checkpoint.safetensors to resume from"; expect_err "--force"
refused "$train" "$work/tiny.yml" --out "$work/s1" --steps 5; expect_err "past train_iters (4)"
refused "$train" "$work/tiny.yml" --out "$work/s1" --steps 0; expect_err "--steps needs an integer >= 1, not '0'"
refused "$train" "$work/tiny.yml" --out "$work/s1" --steps 2x; expect_err "not '2x'"
refused "$train" "$work/tiny.yml" --out "$work/s1" --threads -1; expect_err "--threads"
[ ! -e "$work/s1" ] || die "a refused command created its run directory"

# ---- config keys: warnings, the official config, --help ----------------------------
tiny_config "$work/typo.yml" "$keys"', "train_iter": 9, "data_fromat": "u16", "pretrain_partial_init": true'
"$train" "$work/typo.yml" --threads 1 --out "$work/typo" --steps 1 > /dev/null 2> "$work/err"
expect_err "config key 'train_iter' is not used (did you mean 'train_iters'?)"
expect_err "config key 'data_fromat' is not used (did you mean 'data_format'?)"
expect_err "'pretrain_partial_init' is GPT-NeoX's and not read here: this trainer's is 'init_from'"
[ "$(grep -c warning "$work/err")" = 3 ] || die "expected 3 warnings: $(cat "$work/err")"

# the official 150M config, every key kept, the sizes made tiny and the data
# a text file (its 'save' is left: --out takes its place)
official=$root/tests/data/configs/150M_train_pile.yml
sed -e 's/"num_layers": 12,/"num_layers": 2,/' -e 's/"hidden_size": 768,/"hidden_size": 32,/' \
    -e 's/"num_attention_heads": 12,/"num_attention_heads": 2,/' \
    -e 's/"qkv_slot_num": 768,/"qkv_slot_num": 16,/' -e 's/"proj_slot_num": 768,/"proj_slot_num": 16,/' \
    -e 's/"ffn_slot_num": 3072,/"ffn_slot_num": 32,/' -e 's/"seq_length": 2048,/"seq_length": 32,/' \
    -e 's/"max_position_embeddings": 2048,/"max_position_embeddings": 32,/' \
    -e 's/"train_micro_batch_size_per_gpu": 32,/"train_micro_batch_size_per_gpu": 2,/' \
    -e 's/"gradient_accumulation_steps": 4,/"gradient_accumulation_steps": 1,/' \
    -e 's/"train_iters": 143000,/"train_iters": 4,/' -e 's/"lr_decay_iters": 143000,/"lr_decay_iters": 4,/' \
    -e 's/"eval_interval": 5000,/"eval_interval": 2,/' -e 's/"eval_iters": 100,/"eval_iters": 1,/' \
    -e "s|\"data_path\": \"[^\"]*\"|\"data_path\": \"$root/tests/data/README.md\"|" \
    "$official" > "$work/official.yml"
top_keys() { grep -o '^ *"[^"]*":' "$1" | tr -d ' ":' | sort; }
[ "$(top_keys "$official")" = "$(top_keys "$work/official.yml")" ] || die "the tiny variant lost keys"
[ "$(diff "$official" "$work/official.yml" | grep -c '^>')" = 15 ] || die "the tiny variant: sed missed a size"
"$train" "$work/official.yml" --threads 1 --out "$work/official" > "$work/official.out" 2> "$work/err" \
  || die "the official config does not train: $(cat "$work/err")"
[ ! -s "$work/err" ] || die "the official config gives warnings: $(cat "$work/err")"
grep -q "^model: L=2 d=32 heads=2 slots qkv=16 proj=16 ffn=32" "$work/official.out" \
  || die "the official config's model: $(head -n 1 "$work/official.out")"

"$train" --help > "$work/help"
for k in data_path val_path data_format val_fraction train_iters train_micro_batch_size_per_gpu \
         gradient_accumulation_steps seed max_nonfinite_steps eval_interval eval_iters log_interval \
         save checkpoint_factor init_from grow_at_step grow_qkv_slot_num grow_proj_slot_num \
         grow_ffn_slot_num grow_schedule grow_key_init grow_key_std grow_value_std grow_scale \
         grow_tau_ramp grow_reset_optimizer grow_lr_schedule grow_lr grow_min_lr grow_decay_steps \
         grow_warmup grow_lr_factor grow_eval; do
  grep -qE "^  $k \[[^]]+\]$" "$work/help" || die "--help does not list $k with its default"
done
for d in "eval_interval [100]" "checkpoint_factor [500]" "data_format [auto]" "val_fraction [0.05]" \
         "train_iters [required]" "grow_scale [ramp]" "grow_tau_ramp [300]"; do
  grep -qF "  $d" "$work/help" || die "--help: no '$d'"
done
grep -A4 -- "--steps N" "$work/help" | tr '\n' ' ' | grep -q "stop early.*train_iters still sets" \
  || die "--help does not say what --steps means"

# ---- data: llm.c shard sets, text directories ----------------------------------------
mkdir "$work/shards" "$work/text"
"$py" - "$work/shards" <<'PY'
import struct, sys
ids = [(i * 7 + i // 13) % 256 for i in range(9000)]
def shard(name, magic, version, fmt, toks):
    with open(f"{sys.argv[1]}/{name}", "wb") as f:
        f.write(struct.pack("<256i", magic, version, len(toks), *([0] * 253)))
        f.write(struct.pack(f"<{len(toks)}{fmt}", *toks))
shard("tiny_train_000001.bin", 20240801, 7, "I", ids[:3000])    # llama 3: uint32
shard("tiny_train_000002.bin", 20240801, 7, "I", ids[3000:6000])
shard("tiny_train_000003.bin", 20240520, 1, "H", ids[6000:8000])  # gpt-2: uint16
shard("tiny_val_000000.bin", 20240801, 7, "I", ids[8000:9000])
PY
shard_config() {  # $1 out, $2 the data keys
  sed "s|\"data_path\": \"tests/data/README.md\", \"data_format\": \"bytes\", \"val_fraction\": 0.1,|$2,|" \
    "$work/tiny.yml" > "$1"
  grep -qF "$2" "$1" || die "shard_config: tiny_config's data line changed"
}
s=$work/shards
shard_config "$work/dir.yml" "\"data_path\": \"$s\", \"val_path\": \"$s\""
"$train" "$work/dir.yml" --threads 1 --out "$work/dir" > "$work/dir.out"
want="data: train 3 files (2 llmc v7, uint32 ids; 1 llmc v1, uint16 ids) 8000 tokens; val 1 file (llmc v7, uint32 ids) 1000 tokens"
grep -qxF "$want" "$work/dir.out" || die "shard directory: $(grep ^data: "$work/dir.out")"
shard_config "$work/list.yml" "\"data_path\": [\"$s/tiny_train_000003.bin\", \"$s/tiny_train_000001.bin\"], \"val_path\": [\"$s/tiny_val_000000.bin\"]"
"$train" "$work/list.yml" --threads 1 --out "$work/list" --steps 1 > "$work/list.out"
grep -qxF "data: train 2 files (1 llmc v1, uint16 ids; 1 llmc v7, uint32 ids) 5000 tokens; val 1 file (llmc v7, uint32 ids) 1000 tokens" \
  "$work/list.out" || die "shard list: $(grep ^data: "$work/list.out")"
shard_config "$work/glob.yml" "\"data_path\": \"$s/*_train_00000[12].bin\", \"val_path\": \"$s/*_val_*.bin\""
"$train" "$work/glob.yml" --threads 1 --out "$work/glob" --steps 1 > "$work/glob.out"
grep -qxF "data: train 2 files (llmc v7, uint32 ids) 6000 tokens; val 1 file (llmc v7, uint32 ids) 1000 tokens" \
  "$work/glob.out" || die "shard glob: $(grep ^data: "$work/glob.out")"
# streamed shards resume exactly
"$train" "$work/dir.yml" --threads 1 --out "$work/dir2" --steps 2 > /dev/null
"$train" "$work/dir.yml" --threads 1 --out "$work/dir2" --resume > /dev/null
cmp -s "$work/dir/checkpoint.safetensors" "$work/dir2/checkpoint.safetensors" \
  || die "a shard run interrupted at step 2 and resumed differs"
shard_config "$work/mixed.yml" "\"data_path\": [\"$s\"], \"val_path\": \"$s/tiny_val_000000.bin\""
refused "$train" "$work/mixed.yml" --out "$work/mixed"; expect_err "every path is one file"
shard_config "$work/both.yml" "\"data_path\": \"$s\", \"val_path\": \"$s\", \"val_fraction\": 0.1"
refused "$train" "$work/both.yml" --out "$work/both"; expect_err "not both"
# a directory of text files: its extension-less files, as before
head -c 5000 "$root/tests/data/README.md" > "$work/text/a"
tail -c +5001 "$root/tests/data/README.md" > "$work/text/b"
echo ignored > "$work/text/c.txt"
shard_config "$work/text.yml" "\"data_path\": \"$work/text\""
"$train" "$work/text.yml" --threads 1 --out "$work/textrun" --steps 1 > "$work/text.out"
grep -qE "^data: train 2 text files \(bytes\) [0-9.K]+ tokens; val \(the last 5%\) [0-9.K]+ tokens$" \
  "$work/text.out" || die "text directory: $(grep ^data: "$work/text.out")"
shard_config "$work/textval.yml" "\"data_path\": \"$work/text\", \"val_path\": \"$s\""
refused "$train" "$work/textval.yml" --out "$work/textval"; expect_err "read only without val_path"

# ---- loss.png ------------------------------------------------------------------------
for d in dir fresh official; do
  [ "$(head -c 8 "$work/$d/loss.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] \
    || die "$d/loss.png is not a PNG"
  [ ! -e "$work/$d/loss.png.tmp" ] || die "$d/loss.png.tmp left behind"
done
grep -qF "loss plot: $work/dir/loss.png" "$work/dir.out" || die "the trainer does not say where the plot is"
mkdir "$work/nobin"
PATH=$work/nobin "$train" "$work/tiny.yml" --threads 1 --out "$work/nogp" > /dev/null 2> "$work/err" \
  || die "a missing gnuplot failed the run: $(cat "$work/err")"
[ "$(grep -c gnuplot "$work/err")" = 1 ] || die "a missing gnuplot: not one warning: $(cat "$work/err")"
[ ! -e "$work/nogp/loss.png" ] && [ -f "$work/nogp/checkpoint.safetensors" ] || die "nogp: wrong files"
# a gnuplot that fails: one warning quoting its error, nothing else on stderr
printf '#!/bin/sh\necho "font cache noise" >&2\necho "   line 0: no such terminal" >&2\nexit 1\n' \
  > "$work/nobin/gnuplot"
chmod +x "$work/nobin/gnuplot"
PATH=$work/nobin:$PATH "$train" "$work/tiny.yml" --threads 1 --out "$work/badgp" > /dev/null 2> "$work/err" \
  || die "a failing gnuplot failed the run: $(cat "$work/err")"
[ "$(cat "$work/err")" = "train: warning: no $work/badgp/loss.png: gnuplot failed (exit status 1): line 0: no such terminal" ] \
  || die "a failing gnuplot: $(cat "$work/err")"
[ ! -e "$work/badgp/loss.png" ] && [ ! -e "$work/badgp/loss.png.tmp" ] || die "badgp: wrong files"

# ---- non-finite steps --------------------------------------------------------------
sed 's/"lr": 0.003/"lr": 1e300/' "$work/tiny.yml" > "$work/lr.yml"
refused "$train" "$work/lr.yml" --out "$work/lr"; expect_err "'optimizer.params.lr'"
# weights at 3e38 overflow the loss: every step of the resumed run is not finite
tiny_config "$work/nf.yml" "$keys"', "max_nonfinite_steps": 3'
"$train" "$work/nf.yml" --threads 1 --out "$work/nf" --steps 2 > /dev/null
PYTHONPATH=$root/bindings/python "$py" - "$work/nf/checkpoint.safetensors" <<'PY'
import sys, numpy as np, tokenformer as tf
p = sys.argv[1]
m = tf.Model.open(p); opt = tf.Optimizer(m); m.load(p, optimizer=opt)
w = m.get_tensor("final_norm.weight")
m.set_tensor("final_norm.weight", np.full(w.shape, 3e38, np.float32))
m.save(p, optimizer=opt)
PY
cp "$work/nf/checkpoint.safetensors" "$work/nf.keep"
cp "$work/nf/log.csv" "$work/nflog.keep"
refused "$train" "$work/nf.yml" --threads 1 --out "$work/nf" --resume
[ "$(grep -c "warning: step 3 skipped" "$work/err")" = 2 ] || die "non-finite: not 2 skips: $(cat "$work/err")"
expect_err "retrying on other batches (2 of 3 in a row)"
expect_err "stopped without saving after 3 non-finite attempts in a row"
expect_err "the last good checkpoint is $work/nf/checkpoint.safetensors (step 2)"
cmp -s "$work/nf/checkpoint.safetensors" "$work/nf.keep" || die "non-finite: the checkpoint was overwritten"
cmp -s "$work/nf/log.csv" "$work/nflog.keep" || die "non-finite: rows were logged"
# the same weights as init_from of a new run: nothing saved at all
tiny_config "$work/nf2.yml" "$keys"', "max_nonfinite_steps": 1, "init_from": "'"$work/nf.keep"'"'
refused "$train" "$work/nf2.yml" --threads 1 --out "$work/nf2"
expect_err "after 1 non-finite attempt in a row"; expect_err "this run saved no checkpoint"
[ ! -e "$work/nf2/checkpoint.safetensors" ] || die "non-finite: a new run saved a checkpoint"

# ---- generate's flags ---------------------------------------------------------------
ck=$work/fresh/checkpoint.safetensors
g() { refused "$bin/generate" "$ck" --prompt "a" --max-new 1 "$@"; }
g --top-p 1.5;        expect_err "--top-p needs a number in [0, 1], not '1.5'"
g --top-p -0.1;       expect_err "--top-p needs a number in [0, 1]"
g --top-p nan;        expect_err "--top-p needs a number in [0, 1]"
g --temperature -1;   expect_err "--temperature needs a number >= 0, not '-1'"
g --temperature warm; expect_err "not 'warm'"
g --temperature inf;  expect_err "--temperature needs a number >= 0"
g --top-k -1;         expect_err "--top-k needs an integer in [0, 2147483647], not '-1'"
g --top-k 2.5;        expect_err "not '2.5'"
g --seed -1;          expect_err "--seed needs a non-negative integer"
g --max-new "";       expect_err "--max-new needs an integer"
for ok in "--top-p 0" "--top-p 1" "--temperature 0" "--top-k 0"; do
  # shellcheck disable=SC2086
  "$bin/generate" "$ck" --prompt "a" --max-new 1 $ok > /dev/null 2>&1 || die "generate refused $ok"
done

echo "trainer_ux_test: OK (run directory guarded, keys warned, official config silent, shards" \
     "with val_path, loss.png, non-finite steps stopped at step 2's checkpoint, generate's flags)"
