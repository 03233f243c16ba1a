#!/usr/bin/python3
"""summarize.py -- the vision experiment's table and plot from its logs.

    /usr/bin/python3 experiments/vision/summarize.py [results_dir]

Reads, in results_dir (default: results/ beside this file):
    scratch.csv, grown.csv   train_vision's log.csv of each run
    torch.csv                bench/vit_torch.py's per-epoch CSV
    *.time                   /usr/bin/time -v of each run
    *.cmd                    each run's command line (settings are read
                             from its key=value arguments)
    load.log                 the machine's load averages sampled during the runs
and writes summary.md (the README's table) and vision.png (test accuracy
against epochs and against training FLOPs; gnuplot).

Training FLOPs, the language experiment's convention (experiments/scaling):
per image of T patches,
    6 N T + 12 L T^2 d + 6 N_head
with N the weights entering a matmul per patch (the patch set's n (p^2 + d)
and every layer set's 2 n d, at the size the model has at that step), L
layers, d the width and N_head = the head set's n (d + classes), which runs
once per image (after the mean pooling).  12 L T^2 d is attention's scores
and weighted sum, forward and backward.  Evaluation is not counted.
bench/vit_torch.py counts its ViT the same way (3x its forward's
multiply-adds x 2).
"""
import csv
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE, CLASSES, TRAIN_IMAGES = 28, 10, 60000

# train_vision's defaults (examples/train_vision.c) for the keys used here
DEFAULTS = dict(patch_size=4, hidden_size=64, num_layers=4, qkv_slot_num=64, proj_slot_num=64,
                ffn_slot_num=256, patch_slot_num=64, head_slot_num=64, batch_size=128,
                epochs=17, grow_at=0, grow_qkv_slot_num=0, grow_proj_slot_num=0,
                grow_ffn_slot_num=0)


def settings(cmd_path):
    s = dict(DEFAULTS)
    if os.path.exists(cmd_path):
        for word in open(cmd_path).read().split():
            k, _, v = word.partition("=")
            if k in s and v:
                s[k] = int(v)
    return s


def flops_per_image(s, qkv, proj, ffn):
    d, L, p = s["hidden_size"], s["num_layers"], s["patch_size"]
    T = (IMAGE // p) ** 2
    n_tok = s["patch_slot_num"] * (p * p + d) + L * 2 * d * (3 * qkv + proj + ffn)
    n_head = s["head_slot_num"] * (d + CLASSES)
    return 6 * n_tok * T + 12 * L * T * T * d + 6 * n_head


def tf_run(results, name):
    """Per-epoch rows (epoch, step, test_acc, seconds, cumulative FLOPs) of a
    train_vision log, or None."""
    path = os.path.join(results, name + ".csv")
    if not os.path.exists(path):
        return None
    s = settings(os.path.join(results, name + ".cmd"))
    B = s["batch_size"]
    per_epoch = TRAIN_IMAGES // B
    small = flops_per_image(s, s["qkv_slot_num"], s["proj_slot_num"], s["ffn_slot_num"])
    big = flops_per_image(s, s["grow_qkv_slot_num"] or s["qkv_slot_num"],
                          s["grow_proj_slot_num"] or s["proj_slot_num"],
                          s["grow_ffn_slot_num"] or s["ffn_slot_num"])
    rows, flops, train_s, prev_t, prev_dt = [], 0.0, 0.0, 0.0, 0.0
    for r in csv.DictReader(open(path)):
        step = int(r["step"])
        flops += B * (big if s["grow_at"] and step > s["grow_at"] else small)
        # a row's seconds follow its step and, on an evaluation row, the
        # evaluation: that row counts as long as the step before it
        t = float(r["seconds"])
        dt = prev_dt if r["test_acc"] and prev_dt else t - prev_t
        train_s += dt
        prev_t, prev_dt = t, t - prev_t
        if r["test_acc"]:
            rows.append(dict(epoch=step / per_epoch, step=step, acc=float(r["test_acc"]),
                             seconds=t, train_seconds=train_s, flops=flops))
    return dict(name=name, rows=rows, settings=s, flops_small=small, flops_big=big)


def torch_run(results):
    path = os.path.join(results, "torch.csv")
    if not os.path.exists(path):
        return None
    rows, seconds, train_s = [], 0.0, 0.0
    for r in csv.DictReader(open(path)):
        seconds += float(r["train_seconds"]) + float(r["eval_seconds"])
        train_s += float(r["train_seconds"])
        rows.append(dict(epoch=float(r["epoch"]), step=int(r["step"]), acc=float(r["test_acc"]),
                         seconds=seconds, train_seconds=train_s, flops=float(r["train_flops"]),
                         cpu=float(r["train_cpu_seconds"])))
    return dict(name="torch", rows=rows)


def gnu_time(results, name):
    """(wall s, user + system CPU s) of /usr/bin/time -v, or None."""
    path = os.path.join(results, name + ".time")
    if not os.path.exists(path):
        return None
    text = open(path).read()
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([0-9.]+)", text))
    m = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([0-9.]+)", text)
    if not m:
        return None
    wall = int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    return wall, cpu


def load_range(results):
    path = os.path.join(results, "load.log")
    if not os.path.exists(path):
        return ""
    loads = [float(line.split()[1]) for line in open(path) if len(line.split()) >= 2]
    if not loads:
        return ""
    loads.sort()
    return "1-minute load average %.1f-%.1f (median %.1f) on 2 CPUs" % (
        loads[0], loads[-1], loads[len(loads) // 2])


def main():
    results = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "results")
    runs = [r for r in (tf_run(results, "scratch"), torch_run(results), tf_run(results, "grown"))
            if r and r["rows"]]
    labels = dict(scratch="TokenFormer, from scratch", torch="PyTorch ViT (nn.Linear)",
                  grown="TokenFormer, grown at mid-training")
    out = ["| run | epochs | final test acc | best test acc | training s (wall) "
           "| training s / epoch | wall s / epoch | CPU s / epoch "
           "| training FLOPs | FLOPs / scratch's |", "|---|---|---|---|---|---|---|---|---|---|"]
    ref = next((r for r in runs if r["name"] == "scratch"), None)
    for r in runs:
        last = r["rows"][-1]
        epochs = last["epoch"]
        t = gnu_time(results, r["name"])
        wall = last["seconds"] / epochs
        cpu = "%.1f" % (t[1] / epochs) if t else "-"
        if r["name"] == "torch" and not t:  # a run stopped early: its training passes
            cpu = "%.1f" % (sum(x["cpu"] for x in r["rows"]) / epochs)
        # at equal epochs: the scratch run's FLOPs at the same epoch
        ratio = "-"
        if ref:
            same = [x for x in ref["rows"] if abs(x["epoch"] - epochs) < 1e-6]
            if same:
                ratio = "%.3f" % (last["flops"] / same[0]["flops"])
        out.append("| %s | %g | %.4f | %.4f | %.1f | %.1f | %.1f | %s | %.3g | %s |" % (
            labels[r["name"]], round(epochs, 2), last["acc"], max(x["acc"] for x in r["rows"]),
            last["train_seconds"], last["train_seconds"] / epochs, wall, cpu, last["flops"],
            ratio))
    notes = []
    for r in runs:
        t = gnu_time(results, r["name"])
        if t:
            notes.append("- %s: %.0f s wall, %.0f s CPU (user + system) for the whole process "
                         "(data loading, training, an evaluation per epoch); training alone "
                         "(the steps, evaluations excluded) %.1f s wall." % (
                             labels[r["name"]], t[0], t[1], r["rows"][-1]["train_seconds"]))
    tv = next((r for r in runs if r["name"] == "torch"), None)
    if ref and tv:
        acc = {round(x["epoch"], 6): x["acc"] for x in ref["rows"]}
        pairs = ["epoch %g: %.4f vs %.4f" % (x["epoch"], acc[round(x["epoch"], 6)], x["acc"])
                 for x in tv["rows"] if round(x["epoch"], 6) in acc]
        notes.append("- Test accuracy at equal epochs, TokenFormer from scratch vs PyTorch ViT: "
                     + "; ".join(pairs) + ".")
    load = load_range(results)
    if load:
        notes.append("- Machine during the runs (one after the other): %s." % load)
    with open(os.path.join(results, "summary.md"), "w") as f:
        f.write("\n".join(out) + "\n\n" + "\n".join(notes) + "\n")
    print("\n".join(out))
    print("\n".join(notes))

    data = []
    for r in runs:
        path = os.path.join(results, r["name"] + ".points")
        with open(path, "w") as f:
            for x in r["rows"]:
                f.write("%g %g %g\n" % (x["epoch"], x["flops"], 100 * x["acc"]))
        data.append((os.path.basename(path), labels[r["name"]]))
    plot = ["set terminal pngcairo size 1200,480",
            "set output 'vision.png'",
            "set multiplot layout 1,2 title 'Fashion-MNIST test accuracy (%)'",
            "set grid", "set key bottom right", "set yrange [60:95]",
            "set xlabel 'epochs'"]
    plot.append("plot " + ", ".join("'%s' using 1:3 with linespoints title '%s'" % d
                                    for d in data))
    plot += ["set xlabel 'training FLOPs'", "set format x '%.0e'"]
    plot.append("plot " + ", ".join("'%s' using 2:3 with linespoints title '%s'" % d
                                    for d in data))
    plot.append("unset multiplot")
    with open(os.path.join(results, "vision.gp"), "w") as f:
        f.write("\n".join(plot) + "\n")
    subprocess.run(["gnuplot", "vision.gp"], cwd=results, check=True)


if __name__ == "__main__":
    main()
