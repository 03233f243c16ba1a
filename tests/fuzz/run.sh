#!/usr/bin/env bash
# run.sh -- runs built libFuzzer targets, each for SECONDS, from the
# committed seeds (read only) and a working corpus of their own; prints
# each target's executions and fails on the first finding.
#   tests/fuzz/run.sh SECONDS BUILD_DIR TARGET...
set -euo pipefail
secs=$1 dir=$2
shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$dir"
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
# inputs reach the readers as files: keep them in memory where possible
[ -d /dev/shm ] && [ -w /dev/shm ] && export TMPDIR=/dev/shm
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for t in "$@"; do
  mkdir -p "corpus-$t"
  if ! "./fuzz_$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=3072 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$PWD/" "corpus-$t" "$root/tests/fuzz/corpus/$t" \
        > "fuzz_$t.log" 2>&1; then
    tail -n 60 "fuzz_$t.log"
    echo "fuzz: $t FAILED after $(grep -c . "fuzz_$t.log") log lines: see $dir/fuzz_$t.log" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "fuzz_$t.log")
  echo "fuzz: $t: $execs executions in $secs s, no finding"
done
