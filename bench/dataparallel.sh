#!/usr/bin/env bash
# Data-parallel throughput of the trainer on this machine, the same global
# batch every time: 1 rank x 1 thread, 1 rank x 2 threads, 2 ranks x 1
# thread (gradients summed after backward), and 2 ranks x 1 thread with the
# sums overlapped with backward (allreduce_bucket_mb).  Prints tokens/s
# (the median over the timed steps of REPS runs, taken in turns so that a
# change of the machine's load hits every setting alike) and the share of a
# step spent in the gradient sums (the trainer's own count), for two
# models: the fortunes demo's (0.56 M parameters) and bench_model's (4.3 M),
# then bench/allreduce_bandwidth.py over loopback.  docs/scaling-out.md
# quotes the figures.
#
#   bench/dataparallel.sh [STEPS] [REPS]   (defaults 8 and 2; a run's first 2
#                                           steps are not timed)
#
# Needs build/examples/train built with mpicc (make), mpirun and mpi4py.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-8}
reps=${2:-2}
train=build/examples/train
PYTHON=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# --bind-to none: mpirun binds each rank to one core by default (up to 2
# ranks), which would put a rank's 2 threads on one core
mpirun=(mpirun --oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
ldd "$train" | grep libmpi > /dev/null || { echo "$train was built without MPI" >&2; exit 1; }

config() { # NAME LAYERS D HEADS QKV FFN T B
  cat > "$work/$1.yml" <<YML
{ "num_layers": $2, "hidden_size": $3, "num_attention_heads": $4,
  "qkv_slot_num": $5, "proj_slot_num": $5, "ffn_slot_num": $6,
  "seq_length": $7, "vocab_size": 256,
  "optimizer": {"type": "Adam", "params": {"lr": 0.001}}, "train_iters": $steps,
  "train_micro_batch_size_per_gpu": $8, "gradient_accumulation_steps": 1,
  "data_path": "/usr/share/games/fortunes", "val_fraction": 0.05,
  "eval_interval": 1000000, "eval_iters": 1, "checkpoint_factor": 1000000,
  "log_interval": 1000000, "seed": 1 }
YML
}
config fortunes 4 128 4 64 256 128 16
config bench_model 4 256 4 256 1024 256 8

# run NAME TAG RANKS THREADS [KEY VALUE]: one run; appends its timed steps'
# tokens/s to $work/NAME-TAG.tps and its share of time in the sums to .share
run() {
  local name=$1 tag=$2 ranks=$3 threads=$4 cfg=$work/$1.yml
  if [ $# -gt 4 ]; then
    cfg=$work/$1-$5.yml
    sed "s/\"seed\": 1 }/\"seed\": 1, \"$5\": $6 }/" "$work/$1.yml" > "$cfg"
  fi
  "${mpirun[@]}" -np "$ranks" "$train" "$cfg" --threads "$threads" --out "$work/out" --force \
    > "$work/run.out" 2>&1 || { cat "$work/run.out"; exit 1; }
  tail -n +4 "$work/out/log.csv" | cut -d, -f4 >> "$work/$name-$tag.tps"
  sed -n 's/.*: \([0-9.]*\)% of the step time in the gradient sums (\([0-9.e-]*\) s.*/\1 \2/p' \
    "$work/run.out" >> "$work/$name-$tag.share"
}
median() { sort -g | awk '{v[NR] = $1} END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
row() { # NAME TAG LABEL
  local share=-
  if [ -s "$work/$1-$2.share" ]; then
    share="$(cut -d' ' -f1 "$work/$1-$2.share" | median)% ($(cut -d' ' -f2 "$work/$1-$2.share" | median) s)"
  fi
  printf "| %s | %s | %.0f | %s |\n" "$1" "$3" "$(median < "$work/$1-$2.tps")" "$share"
}

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for m in fortunes bench_model; do
  for _ in $(seq "$reps"); do
    run $m 11 1 1
    run $m 12 1 2
    run $m 21 2 1
    run $m 21o 2 1 allreduce_bucket_mb 1
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| model | ranks x threads | tokens/s | gradient sums: share of a step (per step) |"
echo "|---|---|---:|---:|"
for m in fortunes bench_model; do
  row $m 11 "1 x 1"
  row $m 12 "1 x 2"
  row $m 21 "2 x 1"
  row $m 21o "2 x 1, overlapped (1 MB buckets)"
done
echo
"${mpirun[@]}" -np 2 "$PYTHON" bench/allreduce_bandwidth.py --max-mb 64 --reps 10
