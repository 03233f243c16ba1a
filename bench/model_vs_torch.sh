#!/usr/bin/env bash
# model_vs_torch.sh -- bench_model against PyTorch (torch_baseline.py's best
# settings: BLIS_NUM_THREADS = threads, the heap-kept allocations, and the
# BLIS kernel set TORCH_BLIS_ARCH_TYPE, default 6 = zen3, which beat skx (0)
# for PyTorch on this project's AMD machines) in the same run, one row
# each, alternating ours / PyTorch's for every config, batch and thread
# count.
#
#   bench/model_vs_torch.sh [bench|150m|all] [reps]
#
# Default: bench, 3 reps (medians).  150m (T=1024, B=1 and B=2) takes
# minutes per row on 2 cores.  Each measurement is its own process, so the
# peak RSS is that row's.  Times are wall-clock medians; x/sgemm is the
# model's GFLOP/s as a share of the same process's sgemm 1024^3 rate (ours:
# the library's GEMM at that thread count; PyTorch's: a @ b in its
# environment); loadavg is the 1-minute load before and after the row.  On a
# machine shared with other work compare the ratios of one run only.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-bench}
reps=${2:-3}
make -s build/bench/bench_model
py=/usr/bin/python3
malloc=(MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296)
case $which in
  bench) shapes=("bench 8") ;;
  150m) shapes=("150m 1" "150m 2") ;;
  all) shapes=("bench 8" "150m 1" "150m 2") ;;
  *) echo "usage: $0 [bench|150m|all] [reps]" >&2; exit 2 ;;
esac
echo "| config | threads | ours train s | torch train s | torch/ours | ours fwd s | torch fwd s | torch/ours | ours train/sgemm | ours fwd/sgemm | torch train/sgemm | torch fwd/sgemm | ours train tok/s | torch train tok/s | ours fwd tok/s | torch fwd tok/s | ours RSS MB | torch RSS MB | loadavg |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for shape in "${shapes[@]}"; do
  set -- $shape
  cfg=$1 B=$2
  for t in 1 2; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    # bench_model runs B=1 and B=2 of 150m in one process: pick the row.
    ours=$(build/bench/bench_model "$reps" "$cfg" "$t" | grep "^| .* B=$B T=" | head -1)
    theirs=$(env "${malloc[@]}" BLIS_ARCH_TYPE="${TORCH_BLIS_ARCH_TYPE:-6}" BLIS_NUM_THREADS="$t" OMP_NUM_THREADS="$t" \
             "$py" bench/torch_model.py --config "$cfg" --batch "$B" --threads "$t" --reps "$reps")
    load="$load-$(cut -d' ' -f1 /proc/loadavg)"
    OURS="$ours" THEIRS="$theirs" CFG="$cfg" B="$B" T="$t" LOAD="$load" "$py" - <<'PY'
import json, os
o = [c.strip() for c in os.environ["OURS"].strip().strip("|").split("|")]
r = json.loads(os.environ["THEIRS"])
ot, otok, of, oftok = float(o[2]), float(o[4]), float(o[6]), float(o[8])
otr, ofw, orss = o[11], o[12], float(o[13])
g = r["sgemm1024_gflops"]
print(f"| {os.environ['CFG']} B={os.environ['B']} | {os.environ['T']} | {ot:.3f} | {r['train_step_s']:.3f} | "
      f"{r['train_step_s'] / ot:.2f} | {of:.3f} | {r['fwd_s']:.3f} | {r['fwd_s'] / of:.2f} | {otr} | {ofw} | "
      f"{100 * r['train_gflops'] / g:.0f}% | {100 * r['fwd_gflops'] / g:.0f}% | {otok:.0f} | "
      f"{r['train_tok_s']:.0f} | {oftok:.0f} | {r['fwd_tok_s']:.0f} | {orss:.0f} | {r['peak_rss_mb']:.0f} | "
      f"{os.environ['LOAD']} |")
PY
  done
done
