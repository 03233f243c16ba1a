#!/usr/bin/env bash
# callgrind.sh -- instruction counts of one training step and one decode
# step of a small model (bench/instr_step.c), against the counts recorded
# in bench/callgrind_counts.txt: a regression guard that does not depend on
# the machine's load.  Valgrind shows the program a CPU without AVX-512, so
# the AVX2 kernels run and the counts are the same on every AMD or Intel
# CPU with AVX2 of one BLIS kernel set; each recorded line names its set.
#
#   bench/callgrind.sh            print counts and the change against the record
#   bench/callgrind.sh --update   record the current counts
# Exits 1 when a count grew by more than MAX_GROWTH percent (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
update=0
[ "${1:-}" = "--update" ] && update=1
max=${MAX_GROWTH:-2}
record=bench/callgrind_counts.txt
prog=build/bench/instr_step
make -s "$prog"
command -v valgrind > /dev/null || { echo "callgrind.sh: valgrind not found (apt-get install valgrind)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

count() { # mode toggle...
  local mode=$1; shift
  local args=()
  for f in "$@"; do args+=(--toggle-collect="$f"); done
  valgrind --tool=callgrind --collect-atstart=no "${args[@]}" \
    --callgrind-out-file="$tmp/$mode.out" "$prog" "$mode" > /dev/null 2> "$tmp/$mode.err" ||
    { cat "$tmp/$mode.err" >&2; exit 1; }
  sed -n 's/^summary: *//p' "$tmp/$mode.out"
}
arch=$(valgrind --tool=none -q "$prog" info)
train=$(count train tf_model_forward tf_model_backward tf_optimizer_step)
decode=$(count decode tf_decoder_step)

status=0
for row in "train $train" "decode $decode"; do
  set -- $row
  old=$(awk -v k="$1" -v a="$arch" '$1 == k && $2 == a { print $3 }' "$record" 2>/dev/null || true)
  if [ -n "$old" ]; then
    pct=$(awk -v n="$2" -v o="$old" 'BEGIN { printf "%+.2f", 100 * (n - o) / o }')
    echo "$1 ($arch): $2 instructions, recorded $old ($pct%)"
    awk -v p="$pct" -v m="$max" 'BEGIN { exit !(p > m) }' && status=1
  else
    echo "$1 ($arch): $2 instructions (none recorded for this kernel set)"
  fi
done
if [ $update -eq 1 ]; then
  { grep -v " $arch " "$record" 2>/dev/null | grep -v '^#' || true; } > "$tmp/rest"
  { echo "# mode kernel_set instructions (bench/callgrind.sh --update; $(date -u +%Y-%m-%d))"
    cat "$tmp/rest"
    echo "train $arch $train"
    echo "decode $arch $decode"; } > "$record"
  echo "recorded in $record"
  exit 0
fi
[ $status -eq 0 ] || echo "callgrind.sh: a count grew by more than $max%" >&2
exit $status
