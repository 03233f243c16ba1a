#!/bin/sh
# make scaling: the incremental-scaling experiment (see README.md).
#   JOBS=2 THREADS=1  runs at a time and threads each (defaults: two one-thread
#                     jobs, which on 2 shared cores beats one two-thread job)
#   SET=default       default | search | replicate | official-3000 | frontier |
#                     seeds | growth4x | long | toward, or a
#                     comma-separated list of such sets and runs (scaling.py --list)
#   RERUN=1           rerun runs that finished before (kept in runs/)
set -eu
cd "$(dirname "$0")/../.."
here=experiments/scaling
force=
[ "${RERUN:-0}" = 1 ] && force=--force
start=$(date +%s)
/usr/bin/python3 $here/scaling.py --set "${SET:-default}" --jobs "${JOBS:-2}" \
    --threads "${THREADS:-1}" $force
# the offline tool on the small stage's checkpoint, as a record of what it does
if [ -f $here/runs/small/checkpoint.safetensors ]; then
    build/examples/grow $here/runs/small/checkpoint.safetensors $here/runs/small-grown.safetensors \
        --config $here/configs/large.yml | tee $here/results/grow.txt
fi
echo "make scaling: $(( $(date +%s) - start )) s wall"
