#!/bin/sh
# make vision: the Fashion-MNIST experiment (see README.md): the TokenFormer
# classifier from scratch, the same-size PyTorch ViT, and a half-size
# TokenFormer grown to the full size at mid-training; then the table and
# the plot (summarize.py).  Runs one after the other, so that their times
# compare; the machine's load is sampled meanwhile.
#   EPOCHS=17          epochs of every run
#   RUNS="scratch grown torch"   which runs (the others' results stay)
#   THREADS=0          threads of the TokenFormer runs (0: the library's
#                      default, one per online CPU)
#   TORCH_THREADS=1    threads of the PyTorch run (its fastest here: with 2,
#                      Debian's torch 1.13 ran this model 4.3x slower per epoch)
set -eu
cd "$(dirname "$0")/../.."
here=experiments/vision
runs=$here/runs
results=$here/results
epochs=${EPOCHS:-17}
mkdir -p "$runs" "$results"
make -s all
start=$(date +%s)
(while :; do echo "$(date +%H:%M:%S) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 30; done) \
    >> "$results/load.log" &
sampler=$!
trap 'kill $sampler 2>/dev/null' EXIT INT TERM

per_epoch=$((60000 / 128))
small="qkv_slot_num=32 proj_slot_num=32 ffn_slot_num=128"
grow="grow_at=$((epochs * per_epoch / 2)) grow_qkv_slot_num=64 grow_proj_slot_num=64 grow_ffn_slot_num=256"
for run in ${RUNS:-scratch grown torch}; do
    echo "== $run ($(cut -d' ' -f1-3 /proc/loadavg))"
    case $run in
    scratch) set -- build/examples/train_vision --out "$runs/scratch" epochs="$epochs" \
        threads="${THREADS:-0}" ;;
    grown) set -- build/examples/train_vision --out "$runs/grown" epochs="$epochs" \
        threads="${THREADS:-0}" $small $grow ;;
    torch)
        # train_vision's defaults (optimizer, schedule, loss, augmentation);
        # bench/vit_torch.py's best settings (bench/model_vs_torch.sh): BLIS's
        # zen3 kernels, BLIS threads, heap-kept allocations; passive waits as ours
        t=${TORCH_THREADS:-1}
        set -- env MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296 \
            BLIS_ARCH_TYPE=6 BLIS_NUM_THREADS="$t" OMP_NUM_THREADS="$t" OMP_WAIT_POLICY=passive \
            /usr/bin/python3 bench/vit_torch.py --epochs "$epochs" --width 64 --depth 4 \
            --heads 4 --patch 4 --batch 128 --lr 2e-3 --min-lr 1e-5 --warmup-steps 500 \
            --weight-decay 0.05 --beta1 0.9 --beta2 0.95 --clip 1.0 --label-smoothing 0.1 \
            --shift 0 --hflip 1 --threads "$t" \
            --csv "$results/torch.csv" ;;
    *) echo "unknown run $run" >&2; exit 2 ;;
    esac
    rm -rf "${runs:?}/$run"
    echo "$*" > "$results/$run.cmd"
    /usr/bin/time -v -o "$results/$run.time" "$@" | tee "$results/$run.out"
    [ "$run" = torch ] || cp "$runs/$run/log.csv" "$results/$run.csv"
done
/usr/bin/python3 $here/summarize.py "$results"
echo "make vision: $(( $(date +%s) - start )) s wall"
