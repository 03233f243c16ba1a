#!/usr/bin/env bash
# shared_cores.sh -- the training step at 1 and 2 threads, on a quiet
# machine and while one other busy process competes for the CPUs (issue
# 15: more threads must never be slower than fewer).
#
#   bench/shared_cores.sh [reps] [rounds] [other-bench_model ...]
#
# Each round runs bench_model on the benchmark config (the 1- and 2-thread
# steps interleaved rep by rep, A B A B, medians of `reps`, default 3)
# quiet, then beside one spinning process (`sh -c 'while :; do :; done'`,
# ended at once afterwards), for this tree's build/bench/bench_model and
# then for each other bench_model binary given (e.g. one built from another
# commit: the same program, another library), all in the same environment
# as given (no OMP_WAIT_POLICY or other tuning).  After `rounds` rounds
# (default 3) it prints the median of the rounds' medians per build and
# load, and the ratio 2-thread / 1-thread (below 1: 2 threads faster).  The
# load average before each round is printed as it goes: the machine's own
# load falls on every row of a round alike, so compare within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
rounds=${2:-3}
shift $(($# < 2 ? $# : 2))
make -s build/bench/bench_model
builds=(build/bench/bench_model "$@")
spinner=
cleanup() { [ -z "$spinner" ] || kill "$spinner" 2> /dev/null || true; }
trap cleanup EXIT
out=$(mktemp)
trap 'cleanup; rm -f "$out"' EXIT

one() { # build-index load-name binary
  "$3" "$reps" bench 0 | awk -F'|' -v b="$1" -v l="$2" '
    /^\| bench / { printf "%s %s %d %s %s\n", b, l, $3 + 0, $4 + 0, $5 + 0 }' >> "$out"
}

for r in $(seq "$rounds"); do
  echo "round $r/$rounds: loadavg $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  for i in "${!builds[@]}"; do
    one "$i" quiet "${builds[$i]}"
    sh -c 'while :; do :; done' &
    spinner=$!
    sleep 0.5
    one "$i" busy "${builds[$i]}"
    kill "$spinner"
    wait "$spinner" 2> /dev/null || true
    spinner=
  done
done

echo "$(nproc) CPUs; medians of $rounds rounds x $reps steps; busy = beside 1 spinning process;" \
  "loadavg at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| build | load | 1-thread step s | 2-thread step s | 2-thread / 1-thread | 1-thread CPU s | 2-thread CPU s |"
echo "|---|---|---|---|---|---|---|"
for i in "${!builds[@]}"; do
  for l in quiet busy; do
    awk -v b="$i" -v l="$l" -v name="${builds[$i]}" '
      function med(a, n,   i, j, t) {
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      }
      $1 == b && $2 == l { k = $3; n[k]++; w[k, n[k]] = $4; c[k, n[k]] = $5 }
      END {
        for (k = 1; k <= 2; k++) {
          delete a; for (i = 1; i <= n[k]; i++) a[i] = w[k, i]; W[k] = med(a, n[k])
          delete a; for (i = 1; i <= n[k]; i++) a[i] = c[k, i]; C[k] = med(a, n[k])
        }
        printf "| %s | %s | %.3f | %.3f | %.2f | %.3f | %.3f |\n", name, l, W[1], W[2], W[2] / W[1], C[1], C[2]
      }' "$out"
  done
done
