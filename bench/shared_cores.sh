#!/usr/bin/env bash
# shared_cores.sh -- the training step at 1 and 2 threads while one other
# busy process competes for the CPUs (issue 15: more threads must never be
# slower than fewer).
#
#   bench/shared_cores.sh [reps] [load]
#
# Starts `load` spinning processes (default 1: `sh -c 'while :; do :; done'`),
# then runs bench_model on the benchmark config with the 1- and 2-thread
# steps interleaved rep by rep (A B A B), once with the environment as given
# and once with OMP_WAIT_POLICY=passive (the documented setting for shared
# machines, see the thread section of include/tokenformer.h), and prints the
# medians of both and their ratio.  The spinners are ended on exit.  Wall
# times on a machine that others also use are noisy: compare ratios from
# one run.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-5}
load=${2:-1}
make -s build/bench/bench_model
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done; }
trap cleanup EXIT
for _ in $(seq "$load"); do
  sh -c 'while :; do :; done' &
  pids+=($!)
done
sleep 1
echo "load: $load spinning process(es) on $(nproc) CPUs; loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| wait policy | 1-thread step s | 2-thread step s | 2-thread / 1-thread | 1-thread CPU s | 2-thread CPU s |"
echo "|---|---|---|---|---|---|"
row() { # label, env...
  local label=$1; shift
  env "$@" build/bench/bench_model "$reps" bench 0 | awk -F'|' -v label="$label" '
    /^\| bench / { t[$3 + 0] = $4 + 0; c[$3 + 0] = $5 + 0 }
    END { printf "| %s | %.3f | %.3f | %.2f | %.3f | %.3f |\n", label, t[1], t[2], t[2] / t[1], c[1], c[2] }'
}
if [ -n "${OMP_WAIT_POLICY:-}" ]; then row "$OMP_WAIT_POLICY"; else row default -u OMP_WAIT_POLICY; fi
row passive OMP_WAIT_POLICY=passive
