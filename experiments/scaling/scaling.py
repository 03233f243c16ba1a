#!/usr/bin/python3
"""The incremental-scaling experiment: train, grow, compare FLOPs.

    scaling.py [--set default|search|NAME,...] [--jobs N] [--threads N]
               [--bin DIR] [--runs DIR] [--results DIR] [--force]
               [--report-only] [--list]

Every run is examples/train with a config made from configs/large.yml plus
the overrides of its entry in RUNS below (written to RUNS_DIR/NAME/
config.yml).  A run with a `base` starts from a copy of the base run's last
checkpoint and logs (`train --resume`), so a shared prefix -- the small
stage above all -- is trained once.  A run that finished with the same
config before (RUNS_DIR/NAME/done) is not run again unless --force; an
unfinished one resumes from its checkpoint.  Runs go --jobs at a time, each
with --threads threads: on 2 cores shared with other work, two one-thread
jobs beat one two-thread job by far (BLIS/OpenMP threads spin when the
cores are oversubscribed).

--set default (make scaling): (a), (b)-small, the four official-recipe
variants grown from (b)'s checkpoint with +1500 steps, the official
release's own recipe (random keys, follow_n) with +3000, and the shipped
recipe; they start in the order of SETS["default"], which packs two
workers.  Results: RESULTS_DIR/summary.md, scaling.png, curves.csv and
NAME.csv per run.  --set search: every variant of the recipe search;
results in RESULTS_DIR/variants.md, variants.png and
RESULTS_DIR/variants/NAME.csv.

The compute-matched frontier (issue 18), each set reported in summary.md's
"Against the compute-matched frontier" with frontier.png (final loss
against training FLOPs), frontier.csv and frontier-line.csv:
--set frontier: models from scratch, each on its own full schedule, for as
many steps as the recipe's FLOPs buy (32 to 128 slots);
--set seeds: seeds 2-5 of the recipe, of (a) and of the frontier's best
model (chosen once the frontier has finished; until then those runs wait);
--set growth4x: a 4x growth (tiny -> small -> large) and the frontier at its
FLOPs; --set long: 6000 steps of (a), of the recipe and of the frontier at
the recipe's FLOPs; --set toward: at the recipe's FLOPs, runs that grow
toward the frontier's best size (32 -> 48 -> 64, 48 -> 64 -> 80; the
first also with the schedule continued through the growths); --set
toward-seeds: seeds 2-5 of 48 -> 64 -> 80.

Per-run CSV: step, flops (cumulative training FLOPs, 6N + 12LTd per token at
the size of each step; validation is not counted), flops_over_a, val_loss,
point ("" for the evaluations every 100 steps, before_growth/after_growth
for the two evaluations around a growth).
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

LARGE = {"qkv_slot_num": 128, "proj_slot_num": 128, "ffn_slot_num": 512}
SMALL = {"qkv_slot_num": 64, "proj_slot_num": 64, "ffn_slot_num": 256}
MID = {"qkv_slot_num": 96, "proj_slot_num": 96, "ffn_slot_num": 384}
TINY = {"qkv_slot_num": 32, "proj_slot_num": 32, "ffn_slot_num": 128}


def base_config():
    with open(os.path.join(HERE, "configs", "large.yml")) as f:
        text = "".join(line for line in f if not line.lstrip().startswith("#"))
    return json.loads(text)


def size(q):
    """The experiment's sizes: qkv = proj = q slots, ffn = 4q."""
    return {"qkv_slot_num": q, "proj_slot_num": q, "ffn_slot_num": 4 * q}


def flops_per_token(slots):
    """The trainer's count (examples/train/main.c): 6N + 12LTd per training
    token, N the weights entering a matmul with the tied head once."""
    c = base_config()
    d, L = c["hidden_size"], c["num_layers"]
    n = (2 * d * (3 * slots["qkv_slot_num"] + slots["proj_slot_num"] + slots["ffn_slot_num"]) * L +
         c["vocab_size"] * d)
    return 6 * n + 12 * L * c["seq_length"] * d


def budget(start, iters, stages=()):
    """Training FLOPs per token of a step (the tokens per step are the same
    in every run) summed over a run: `start` until the first stage, each
    stage's size from its step on."""
    total, step, cur = 0, 0, start
    for st in stages:
        total += flops_per_token(cur) * (st["step"] - step)
        step, cur = st["step"], size(st["qkv"])
    return total + flops_per_token(cur) * (iters - step)


def steps_for(flops, slots):
    """As many whole steps of a model with `slots` as `flops` buys (never
    more: a scratch model must not outspend the run it is compared with)."""
    return int(flops // flops_per_token(slots))


def stage(step, slots):
    return {"step": step, "qkv": slots["qkv_slot_num"], "proj": slots["proj_slot_num"],
            "ffn": slots["ffn_slot_num"]}


def grow(keys="zero", value_std=0, scale="pinned", ramp=300, reset=False, sched="continue",
         lr=None, min_lr=None, warmup=0):
    """Every grow_* key spelled out (the trainer's defaults are the shipped
    recipe; a variant must not depend on them)."""
    c = {"grow_key_init": keys, "grow_value_std": value_std, "grow_scale": scale,
         "grow_tau_ramp": ramp, "grow_reset_optimizer": reset, "grow_lr_schedule": sched,
         "grow_warmup": warmup}
    if lr is not None:
        c["grow_lr"] = lr
    if min_lr is not None:
        c["grow_min_lr"] = min_lr
    return c


RUNS = {}


def add(name, group, desc, start, iters, base=None, stop=None, cfg=None, baseline="large"):
    """baseline: the from-scratch run whose final loss and FLOPs this run is
    measured against (the same seed's (a))."""
    RUNS[name] = dict(group=group, desc=desc, start=start, iters=iters, base=base, stop=stop,
                      cfg=cfg or {}, baseline=baseline)


# ---- (a), (b)-small -----------------------------------------------------------
add("large", "baseline", "(a) large (qkv=proj=128, ffn=512) from scratch, 3000 steps",
    LARGE, 3000)
add("small", "baseline", "(b) small (qkv=proj=64, ffn=256) from scratch, 1500 steps (its own "
    "warmup + cosine): the stage the official variants grow from", SMALL, 1500)

# ---- the official recipe -------------------------------------------------------
# (b)'s checkpoint grown to the large slots with zero/random keys x follow_n/
# pinned tau, a fresh AdamW and a fresh 100-step warmup + cosine to 0.1 x lr
# over the grown stage, as the TokenFormer authors run every stage.
for more in (1500, 3000):
    for keys in ("zero", "random"):
        for scale in ("follow_n", "pinned"):
            add(f"official-{keys}-{scale}-{more}", "official",
                f"official recipe from (b): {keys} keys, {scale} tau, fresh AdamW, 100 "
                f"warmup + cosine 1e-3 -> 1e-4, +{more} steps",
                SMALL, 1500 + more, base="small",
                cfg={"grow_at_step": 1500, "grow_qkv_slot_num": 128, "grow_proj_slot_num": 128,
                     "grow_ffn_slot_num": 512,
                     **grow(keys=keys, scale=scale, reset=True, sched="restart", lr=1e-3,
                            min_lr=1e-4, warmup=100)})

# ---- the shipped recipe --------------------------------------------------------
# One schedule planned over the whole run (warmup + cosine over 3000 steps);
# the small model grown in place twice, to 96/96/384 slots at step 1000 and
# to the large slots at 2000, each time with the trainer's grow_* defaults:
# zero keys, new values at 1/20 of the init's std, tau pinned then ramped to
# the new size's over 300 steps, AdamW carried, and the lr back at the peak
# (no warmup) in a cosine that ends at min_lr / 10.
TWO_GROWTHS = [stage(1000, MID), stage(2000, LARGE)]
add("small-to1000", "prefix", "small with the 3000-step schedule, first 1000 steps", SMALL,
    3000, stop=1000)
add("recipe", "recipe", "the shipped recipe: small -> 96/96/384 at 1000 -> large at 2000 of "
    "one 3000-step schedule, each growth with the trainer's defaults (zero keys, values 1/20 "
    "of init, tau ramped over 300 steps, AdamW carried, lr back to the peak without warmup, "
    "cosine to min_lr/10)", SMALL, 3000, base="small-to1000",
    cfg={"grow_schedule": TWO_GROWTHS})

# ---- the recipe search (every variant tried) -------------------------------------
add("small-to1500", "prefix", "small with the 3000-step schedule, first 1500 steps", SMALL,
    3000, stop=1500)
add("recipe-1growth", "search", "the recipe with one growth: small -> large at 1500 of one "
    "3000-step schedule, the trainer's defaults (the shipped recipe until the two-growth "
    "variant beat it)", SMALL, 3000, base="small-to1500",
    cfg={"grow_schedule": [stage(1500, LARGE)]})
add("tiny-to750", "prefix", "tiny (qkv=proj=32, ffn=128) with the 3000-step schedule, first "
    "750 steps", TINY, 3000, stop=750)
add("small-to1200", "prefix", "small with the 3000-step schedule, first 1200 steps", SMALL,
    3000, stop=1200)


def from_small(name, desc, **kw):
    add(name, "search", desc, SMALL, 3000, base="small",
        cfg={"grow_at_step": 1500, "grow_qkv_slot_num": 128, "grow_proj_slot_num": 128,
             "grow_ffn_slot_num": 512, **grow(**kw)})


from_small("small-carried-lr1e-3", "from (b): zero keys, pinned, AdamW carried, no warmup, "
           "cosine 1e-3 -> 1e-4", sched="restart", lr=1e-3, min_lr=1e-4)
from_small("small-carried-lr3e-4", "from (b): zero keys, pinned, AdamW carried, no warmup, "
           "cosine 3e-4 -> 3e-5", sched="restart", lr=3e-4, min_lr=3e-5)


def planned(name, desc, stages, start, base, **kw):
    add(name, "search", desc, start, 3000, base=base,
        cfg={"grow_schedule": stages, **grow(**kw)})


S15 = [stage(1500, LARGE)]
planned("grow-t750-s1500", "tiny -> small at 750 -> large at 1500 of one 3000-step schedule; "
        "zero keys, pinned, AdamW carried, schedule continued",
        [stage(750, SMALL), stage(1500, LARGE)], TINY, "tiny-to750")
planned("grow-s1500", "small -> large at 1500 of one 3000-step schedule; zero keys, pinned, "
        "AdamW carried, schedule continued", S15, SMALL, "small-to1500")
planned("grow-s1500-follow", "as grow-s1500 with follow_n tau (jumps to the large model's "
        "scale)", S15, SMALL, "small-to1500", scale="follow_n")
planned("grow-s1500-ramp", "as grow-s1500, tau ramped to the large model's over 300 steps",
        S15, SMALL, "small-to1500", scale="ramp")
planned("grow-s1500-vs", "as grow-s1500, new values N(0, 0.002) (init: 0.044)", S15, SMALL,
        "small-to1500", value_std=0.002)
planned("grow-s1500-lr1e-3-min1e-5", "as grow-s1500, lr back up to 1e-3 at growth, cosine to "
        "1e-5", S15, SMALL, "small-to1500", sched="restart", lr=1e-3, min_lr=1e-5)
planned("grow-s1500-vs-ramp-lr1e-3-min1e-5", "values 0.002 + tau ramp + lr back up to 1e-3, "
        "cosine to 1e-5", S15, SMALL, "small-to1500", value_std=0.002, scale="ramp",
        sched="restart", lr=1e-3, min_lr=1e-5)
planned("grow-s1500-vs-ramp-min1e-5", "values 0.002 + tau ramp + lr on from 5.74e-4, cosine "
        "to 1e-5", S15, SMALL, "small-to1500", value_std=0.002, scale="ramp", sched="restart",
        lr=5.74e-4, min_lr=1e-5)
planned("grow-s1500-vs-ramp-lr1e-3-min0", "values 0.002 + tau ramp + lr back up to 1e-3, "
        "cosine to 0", S15, SMALL, "small-to1500", value_std=0.002, scale="ramp",
        sched="restart", lr=1e-3, min_lr=0)
planned("grow-s1200-vs-ramp-lr1e-3-min1e-5", "values 0.002 + tau ramp + lr back up to 1e-3, "
        "cosine to 1e-5, growing at 1200", [stage(1200, LARGE)], SMALL, "small-to1200",
        value_std=0.002, scale="ramp", sched="restart", lr=1e-3, min_lr=1e-5)
planned("grow-s1500-vs-ramp-lr1e-3-w100-min1e-5", "values 0.002 + tau ramp + lr warmed up "
        "again from 0 to 1e-3 over 100 steps, cosine to 1e-5", S15, SMALL, "small-to1500",
        value_std=0.002, scale="ramp", sched="restart", lr=1e-3, min_lr=1e-5, warmup=100)
planned("grow-s1500-vs-ramp-lr1.5e-3-min1e-5", "values 0.002 + tau ramp + lr up to 1.5e-3 "
        "(no warmup), cosine to 1e-5", S15, SMALL, "small-to1500", value_std=0.002,
        scale="ramp", sched="restart", lr=1.5e-3, min_lr=1e-5)
from_small("small-vs-ramp-lr1e-3-min1e-5", "from (b): zero keys, values 0.002, tau ramp, "
           "AdamW carried, lr back up to 1e-3 (no warmup), cosine to 1e-5", value_std=0.002,
           scale="ramp", sched="restart", lr=1e-3, min_lr=1e-5)
from_small("small-vs-ramp-lr1e-3-w100-min1e-5", "from (b): zero keys, values 0.002, tau ramp, "
           "AdamW carried, lr warmed up again to 1e-3 over 100 steps, cosine to 1e-5",
           value_std=0.002, scale="ramp", sched="restart", lr=1e-3, min_lr=1e-5, warmup=100)
planned("grow-s1000-m2000-vs-ramp-lr1e-3-min1e-5", "two smaller growths: small -> 96/96/384 "
        "at 1000 -> large at 2000, each with values 0.002 + tau ramp + lr back up to 1e-3, "
        "cosine to 1e-5", [stage(1000, MID), stage(2000, LARGE)], SMALL, "small-to1000",
        value_std=0.002, scale="ramp", sched="restart", lr=1e-3, min_lr=1e-5)
add("large-min1e-5", "control", "control: (a) with its cosine ending at 1e-5 instead of 1e-4",
    LARGE, 3000, cfg={"min_lr": 1e-5})

# ---- replicates with other seeds (init and batch order) -------------------------
# How much of the margin is noise: (a) and the recipe again with seeds 2 and
# 3, each measured against (a) with the same seed.
for seed in (2, 3):
    add(f"large-seed{seed}", "replicate", f"(a) with seed {seed}", LARGE, 3000,
        cfg={"seed": seed}, baseline=f"large-seed{seed}")
    add(f"small-to1000-seed{seed}", "prefix", f"small-to1000 with seed {seed}", SMALL, 3000,
        stop=1000, cfg={"seed": seed}, baseline=f"large-seed{seed}")
    add(f"recipe-seed{seed}", "replicate", f"the shipped recipe with seed {seed} (measured "
        f"against (a) with seed {seed})", SMALL, 3000, base=f"small-to1000-seed{seed}",
        cfg={"seed": seed, "grow_schedule": TWO_GROWTHS}, baseline=f"large-seed{seed}")
add("small-to1500-seed2", "prefix", "small-to1500 with seed 2", SMALL, 3000, stop=1500,
    cfg={"seed": 2}, baseline="large-seed2")
add("recipe-1growth-seed2", "replicate", "the one-growth recipe with seed 2 (measured against "
    "(a) with seed 2)", SMALL, 3000, base="small-to1500-seed2",
    cfg={"seed": 2, "grow_schedule": [stage(1500, LARGE)]}, baseline="large-seed2")

# ---- the compute-matched frontier ------------------------------------------------
# What else the recipe's compute could have bought: models trained from
# scratch, each on its own full schedule (100 warmup steps, cosine to min_lr
# over its own length), for as many steps as a budget buys.  The best of
# them at a budget is the baseline a grown model has to beat there.
RECIPE_BUDGET = budget(SMALL, 3000, TWO_GROWTHS)
SEEDS = (1, 2, 3, 4, 5)


def large_name(seed):
    return "large" if seed == 1 else f"large-seed{seed}"


def scratch(q, flops, budget_name, seed=1, group="frontier", baseline=None):
    """The run of a q/q/4q model from scratch for as many steps as `flops`
    buys; defined on first use, named by size, steps and seed."""
    steps = steps_for(flops, size(q))
    name = f"scratch-{q}-{steps}" + ("" if seed == 1 else f"-seed{seed}")
    if name not in RUNS:
        add(name, group, f"from scratch at {budget_name}'s FLOPs: qkv=proj={q}, ffn={4 * q}, "
            f"{steps} steps on its own schedule (100 warmup, cosine over {steps})" +
            ("" if seed == 1 else f", seed {seed}"), size(q), steps,
            cfg=None if seed == 1 else {"seed": seed}, baseline=baseline or large_name(seed))
    return name


# The recipe's budget is exactly 3000 steps of the 96/96/384 model (the mean
# of its three stages); in priority order, the sizes around it first, then
# the smaller ones that the first results asked for (64 slots won).
FRONTIER_SIZES = (96, 80, 64, 112, 48, 128, 32)
FRONTIER = [scratch(q, RECIPE_BUDGET, "the recipe") for q in FRONTIER_SIZES]

# ---- seeds -----------------------------------------------------------------------
# (a), the recipe and the frontier's best with seeds 1-5 (init and batch
# order); seeds 2 and 3 of (a) and the recipe are defined with the
# replicates above.
for seed in (4, 5):
    add(large_name(seed), "replicate", f"(a) with seed {seed}", LARGE, 3000,
        cfg={"seed": seed}, baseline=large_name(seed))
    add(f"small-to1000-seed{seed}", "prefix", f"small-to1000 with seed {seed}", SMALL, 3000,
        stop=1000, cfg={"seed": seed}, baseline=large_name(seed))
    add(f"recipe-seed{seed}", "replicate", f"the shipped recipe with seed {seed} (measured "
        f"against (a) with seed {seed})", SMALL, 3000, base=f"small-to1000-seed{seed}",
        cfg={"seed": seed, "grow_schedule": TWO_GROWTHS}, baseline=large_name(seed))
FRONTIER_SEEDS = {q: [scratch(q, RECIPE_BUDGET, "the recipe", seed, "frontier-seed")
                      for seed in SEEDS[1:]] for q in FRONTIER_SIZES}


def recipe_name(seed):
    return "recipe" if seed == 1 else f"recipe-seed{seed}"


# ---- a 4x growth -------------------------------------------------------------------
# tiny (32/32/128) -> small at 1000 -> large at 2000 of one 3000-step
# schedule: the recipe's two growths, each doubling the slots; its controls
# are the frontier at its own (smaller) budget.
FOURX_GROWTHS = [stage(1000, SMALL), stage(2000, LARGE)]
FOURX_BUDGET = budget(TINY, 3000, FOURX_GROWTHS)
add("tiny-to1000", "prefix", "tiny (qkv=proj=32, ffn=128) with the 3000-step schedule, first "
    "1000 steps", TINY, 3000, stop=1000)
add("recipe-4x", "growth4x", "a 4x growth: tiny (32/32/128) -> small at 1000 -> large at 2000 "
    "of one 3000-step schedule, each growth with the trainer's defaults", TINY, 3000,
    base="tiny-to1000", cfg={"grow_schedule": FOURX_GROWTHS})
FOURX_FRONTIER = [scratch(q, FOURX_BUDGET, "recipe-4x", group="frontier-4x")
                  for q in (64, 48, 80)]

# ---- a longer horizon --------------------------------------------------------------
# 6000 steps: (a), the recipe with its growths at the same fractions of the
# run, and the frontier at the recipe's budget.
LONG_GROWTHS = [stage(2000, MID), stage(4000, LARGE)]
LONG_BUDGET = budget(SMALL, 6000, LONG_GROWTHS)
add("large-6000", "long", "(a) for 6000 steps (its own schedule)", LARGE, 6000,
    baseline="large-6000")
add("small-to2000-6000", "prefix", "small with the 6000-step schedule, first 2000 steps", SMALL,
    6000, stop=2000, baseline="large-6000")
add("recipe-6000", "long", "the recipe over 6000 steps: small -> 96/96/384 at 2000 -> large at "
    "4000 of one 6000-step schedule, the trainer's defaults", SMALL, 6000,
    base="small-to2000-6000", cfg={"grow_schedule": LONG_GROWTHS}, baseline="large-6000")
LONG_FRONTIER = [scratch(q, LONG_BUDGET, "recipe-6000", group="frontier-long",
                         baseline="large-6000") for q in (64, 80)]

# ---- recipes that grow toward the frontier's best size ------------------------------
# The frontier says that at the recipe's budget a 64-slot model for 4142
# steps beats the large one for 2351 (more steps beat more slots here).  A
# grown run spends the same budget on more steps: it starts smaller and
# ends at (or just past) the frontier's best size, growing at 1/3 and 2/3
# of one schedule (the trainer's grow_* defaults, as the shipped recipe).


def steps_for_stages(flops, sizes):
    """As many whole steps as `flops` buys when the run passes through
    `sizes` (slots), growing at equal thirds (halves, ...) of its length."""
    k = len(sizes)

    def stages(n):
        return [stage(round(n * i / k), size(q)) for i, q in enumerate(sizes[1:], 1)]

    n = int(flops // flops_per_token(size(sizes[-1])))
    while budget(size(sizes[0]), n + 1, stages(n + 1)) <= flops:
        n += 1
    return n, stages(n)


TOWARD = []
for sizes in ((32, 48, 64), (48, 64, 80)):
    n, st = steps_for_stages(RECIPE_BUDGET, sizes)
    tag = "grow-" + "-".join(map(str, sizes))
    prefix = f"{tag}-to{st[0]['step']}"
    add(prefix, "prefix", f"{sizes[0]} slots with the {n}-step schedule, first {st[0]['step']} "
        "steps", size(sizes[0]), n, stop=st[0]["step"])
    add(f"{tag}-{n}", "toward", f"toward the frontier's best size at the recipe's budget: "
        + " -> ".join(f"{q}/{q}/{4 * q}" for q in sizes) + f" growing at " +
        " and ".join(str(x["step"]) for x in st) + f" of one {n}-step schedule, the trainer's "
        "defaults", size(sizes[0]), n, base=prefix, cfg={"grow_schedule": st})
    TOWARD.append(f"{tag}-{n}")
    if sizes == (32, 48, 64):
        add(f"{tag}-{n}-continue", "toward", f"as {tag}-{n}, the schedule continued through "
            "the growths (one cosine over the whole run, no restart at the peak)",
            size(sizes[0]), n, base=prefix,
            cfg={"grow_schedule": st, "grow_lr_schedule": "continue"})
        TOWARD.append(f"{tag}-{n}-continue")

# Seeds 2-5 of the toward run that came closest to the frontier at seed 1
# (48 -> 64 -> 80 with the trainer's defaults), each with its own prefix.
TOWARD_BEST = next(n for n in TOWARD if n.startswith("grow-48-64-80-"))
TOWARD_SEEDS = []
for seed in SEEDS[1:]:
    n, st = steps_for_stages(RECIPE_BUDGET, (48, 64, 80))
    prefix = f"grow-48-64-80-to{st[0]['step']}-seed{seed}"
    add(prefix, "prefix", f"grow-48-64-80-to{st[0]['step']} with seed {seed}", size(48), n,
        stop=st[0]["step"], cfg={"seed": seed}, baseline=large_name(seed))
    add(f"grow-48-64-80-{n}-seed{seed}", "toward-seed", f"grow-48-64-80-{n} with seed {seed}",
        size(48), n, base=prefix, cfg={"seed": seed, "grow_schedule": st},
        baseline=large_name(seed))
    TOWARD_SEEDS.append(f"grow-48-64-80-{n}-seed{seed}")

OFFICIAL_1500 = [n for n in RUNS if n.startswith("official-") and n.endswith("-1500")]
# The +3000 run of the official recipe is the release's own choice (random
# keys, follow_n): fixed, so it need not wait for the four +1500 runs.  Runs
# start in this order as workers free up (a run waits for its base): on two
# workers it finishes ~6% sooner than (a), (b), the variants, then the rest.
SETS = {
    "default": ["large", "small-to1000", "small"] + OFFICIAL_1500 +
               ["official-random-follow_n-3000", "recipe"],
    "search": [n for n, r in RUNS.items() if r["group"] in ("search", "control")],
    "replicate": [n for n, r in RUNS.items() if r["group"] == "replicate"],
    "official-3000": [n for n in RUNS if n.startswith("official-") and n.endswith("-3000")],
    "frontier": FRONTIER,
    "seeds": lambda args: seeds_set(args),
    "growth4x": ["recipe-4x"] + FOURX_FRONTIER,
    "long": ["recipe-6000", "large-6000"] + LONG_FRONTIER,
    "toward": TOWARD,
    "toward-seeds": TOWARD_SEEDS,
}


def final_loss(name, args):
    """A finished run's last validation loss, or None."""
    if not is_done(name, args):
        return None
    evals, _ = read_run(name, args)
    return evals[-1][2] if evals else None


def frontier_best(args):
    """The slots (q) of the frontier's best model at the recipe's budget
    (seed 1), or None until every frontier run has finished."""
    losses = [final_loss(n, args) for n in FRONTIER]
    if None in losses:
        return None
    return RUNS[FRONTIER[losses.index(min(losses))]]["start"]["qkv_slot_num"]


def seeds_set(args):
    """Seeds 2-5 of the recipe, of the frontier's best model (once the
    frontier has finished) and of (a), in that order."""
    out = []
    for seed in SEEDS[1:]:
        out += [recipe_name(seed)]
    best = frontier_best(args)
    if best:
        out += FRONTIER_SEEDS[best]
    return out + [large_name(seed) for seed in SEEDS[1:]]


def set_names(spec, args):
    """--set: sets and runs, comma-separated, each set's runs in order."""
    names = []
    for part in spec.split(","):
        got = SETS.get(part, [part])
        for n in (got(args) if callable(got) else got):
            if n not in names:
                names.append(n)
    return names


# ---- configs -----------------------------------------------------------------

def config_text(name):
    r = RUNS[name]
    c = base_config()
    c.update(r["start"])
    c["train_iters"] = r["iters"]
    c.update(r["cfg"])
    return (f"# {name}: {r['desc']}\n# generated by experiments/scaling/scaling.py\n" +
            json.dumps(c, indent=2) + "\n")


def needed(names):
    """names and every base they start from, bases first."""
    out = []

    def visit(n):
        if n in out:
            return
        if RUNS[n]["base"]:
            visit(RUNS[n]["base"])
        out.append(n)

    for n in names:
        visit(n)
    return out


# ---- running -----------------------------------------------------------------

def is_done(name, args):
    d = os.path.join(args.runs, name)
    cfg = os.path.join(d, "config.yml")
    return (os.path.exists(os.path.join(d, "done")) and os.path.exists(cfg) and
            open(cfg).read() == config_text(name))


def prepare(name, args):
    """The command of a run.  An unfinished run of the same config (a crash,
    an interrupt) resumes from its checkpoint; anything else starts over."""
    d = os.path.join(args.runs, name)
    r = RUNS[name]
    text = config_text(name)
    cfg = os.path.join(d, "config.yml")
    cmd = [os.path.join(args.bin, "train"), cfg, "--out", d, "--threads", str(args.threads)]
    if r["stop"]:
        cmd += ["--steps", str(r["stop"])]
    if (not args.force and os.path.exists(os.path.join(d, "checkpoint.safetensors")) and
            os.path.exists(cfg) and open(cfg).read() == text):
        return cmd + ["--resume"]
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    with open(cfg, "w") as f:
        f.write(text)
    if r["base"]:
        b = os.path.join(args.runs, r["base"])
        for f in ("checkpoint.safetensors", "log.csv", "growth.csv"):
            if os.path.exists(os.path.join(b, f)):
                shutil.copy(os.path.join(b, f), os.path.join(d, f))
        cmd.append("--resume")
    return cmd


def run_all(wanted, args, t_all):
    """Runs wanted() (and their bases), --jobs at a time, each as soon as a
    worker is free and its base is done, in the order of wanted().  wanted
    is asked again as runs finish: a set may name runs that depend on
    others' results (the seeds of the frontier's best model)."""
    done, checked, started, failed, running = set(), set(), set(), [], []
    while True:
        asked = wanted()
        todo = needed(asked)
        for n in todo:
            if n not in checked:
                checked.add(n)
                if is_done(n, args) and not (args.force and n in asked):
                    done.add(n)
        pending = [n for n in todo if n not in done and n not in started and n not in failed]
        if not pending and not running:
            return failed
        for j in list(running):
            rc = j["proc"].poll()
            if rc is None:
                continue
            running.remove(j)
            j["out"].close()
            wall = time.time() - j["t0"]
            if rc == 0:
                with open(os.path.join(args.runs, j["name"], "done"), "w") as f:
                    f.write(f"{wall:.1f} s wall\n")
                done.add(j["name"])
                print(f"[{time.time() - t_all:6.0f} s] done {j['name']} ({wall:.0f} s)",
                      flush=True)
            else:
                failed.append(j["name"])
                print(f"[{time.time() - t_all:6.0f} s] FAILED {j['name']} (exit {rc}); see "
                      f"{args.runs}/{j['name']}/train.out", flush=True)
        for n in pending:
            if len(running) >= args.jobs:
                break
            b = RUNS[n]["base"]
            if b in failed:
                failed.append(n)
                continue
            if b and b not in done:
                continue
            started.add(n)
            cmd = prepare(n, args)
            out = open(os.path.join(args.runs, n, "train.out"), "a")
            running.append(dict(name=n, out=out, t0=time.time(),
                                proc=subprocess.Popen(cmd, stdout=out,
                                                      stderr=subprocess.STDOUT)))
            print(f"[{time.time() - t_all:6.0f} s] start {n}: {' '.join(cmd)}", flush=True)
        time.sleep(1)


# ---- analysis ----------------------------------------------------------------

def read_run(name, args):
    d = os.path.join(args.runs, name)
    evals, growths = {}, {}
    with open(os.path.join(d, "log.csv")) as f:
        for row in csv.DictReader(f):
            if row["val_loss"]:
                s = int(row["step"])
                evals[s] = (s, float(row["flops"]), float(row["val_loss"]))
    gp = os.path.join(d, "growth.csv")
    if os.path.exists(gp):
        with open(gp) as f:
            for row in csv.DictReader(f):
                s = int(row["step"])
                growths[s] = (s, float(row["flops"]), float(row["val_before"]),
                              float(row["val_after"]))
    return [evals[s] for s in sorted(evals)], [growths[s] for s in sorted(growths)]


def reach(evals, target):
    """(step, FLOPs) of the first evaluation at or below target, and the
    FLOPs linearly interpolated between it and the one before; None if
    never."""
    prev = None
    for s, fl, v in evals:
        if v <= target:
            interp = fl
            if prev and prev[2] > target:
                interp = prev[1] + (fl - prev[1]) * (prev[2] - target) / (prev[2] - v)
            return s, fl, interp
        prev = (s, fl, v)
    return None


def analyse(names, args, csv_dir):
    la, _ = read_run("large", args)
    target, fa = la[-1][2], la[-1][1]
    os.makedirs(csv_dir, exist_ok=True)
    rows, curves = [], []
    for n in names:
        if not os.path.exists(os.path.join(args.runs, n, "log.csv")):
            continue
        evals, growths = read_run(n, args)
        if not evals:
            continue
        pts = [(s, fl, v, "") for s, fl, v in evals]
        for s, fl, before, after in growths:
            pts += [(s, fl, before, "before_growth"), (s, fl, after, "after_growth")]
        order = {"before_growth": 1, "": 0, "after_growth": 2}
        pts.sort(key=lambda p: (p[0], order[p[3]]))
        with open(os.path.join(csv_dir, f"{n}.csv"), "w") as f:
            f.write("step,flops,flops_over_a,val_loss,point\n")
            for s, fl, v, what in pts:
                f.write(f"{s},{fl:.6g},{fl / fa:.5f},{v:.6f},{what}\n")
                curves.append((n, s, fl, v, what))
        # measured against the same seed's (a) (for the seed-2 replicate)
        bname = RUNS[n]["baseline"]
        r, b_fa = None, fa
        if os.path.exists(os.path.join(args.runs, bname, "log.csv")):
            lb, _ = read_run(bname, args)
            b_fa = lb[-1][1]
            r = reach(evals, lb[-1][2])
        done = is_done(n, args) or os.path.exists(os.path.join(args.runs, n, "done"))
        rows.append(dict(name=n, desc=RUNS[n]["desc"], group=RUNS[n]["group"],
                         steps=evals[-1][0], final=evals[-1][2], flops=evals[-1][1] / b_fa,
                         growths=growths, done=done or evals[-1][0] == RUNS[n]["iters"],
                         reach=r, fa=b_fa))
    return target, fa, la[-1][0], rows, curves


def table(rows):
    out = ["| run | steps | final val loss | val loss right before -> right after growth | "
           "training FLOPs / (a)'s | FLOPs to reach (a)'s final loss / (a)'s |",
           "|---|---:|---:|---|---:|---:|"]
    for r in rows:
        g = "; ".join(f"{b:.4f} -> {a:.4f} (step {s})" for s, _, b, a in r["growths"]) or "-"
        steps = str(r["steps"]) + ("" if r["done"] else " (stopped)")
        if r["reach"]:
            s, fl, interp = r["reach"]
            reach_cell = f"**{fl / r['fa']:.3f}** (step {s}; {interp / r['fa']:.3f} interpolated)"
        else:
            reach_cell = "not reached"
        out.append(f"| {r['name']} | {steps} | {r['final']:.4f} | {g} | {r['flops']:.3f} | "
                   f"{reach_cell} |")
    return "\n".join(out)


def plot(rows, args, target, fa, png, title):
    gp = shutil.which("gnuplot")
    if not gp:
        print("scaling: no gnuplot; no " + png, file=sys.stderr)
        return
    lines = []
    for i, r in enumerate(rows):
        path = r["csv"]
        style = "lw 3" if r["group"] in ("baseline", "recipe") else "lw 1.5"
        lines.append(f"'{path}' using 3:4 with lines {style} dt {1 + (i // 8) % 4} "
                     f"title '{r['name']}'")
    curves = ", ".join(lines)
    xmax = 1.05 if max(r["flops"] for r in rows) <= 1.0 else 1.32
    script = f"""set terminal pngcairo size 1900,760 font ',10' noenhanced
set output '{png}'
set datafile separator ','
set multiplot layout 1,2 title "{title}\\n(dashed: (a)'s final validation loss {target:.4f}; dotted: 0.8 x (a)'s FLOPs)"
set xlabel "cumulative training FLOPs / (a)'s ({fa:.3g})"
set ylabel 'validation loss (nats/byte)'
set grid
unset key
set yrange [1.4:2.8]
set xrange [0:{xmax}]
set arrow 1 from 0.8, graph 0 to 0.8, graph 1 nohead dt 3 lw 2 lc rgb 'gray40'
plot {curves}, {target} with lines dt 2 lw 2 lc rgb 'black' notitle
set yrange [1.44:1.80]
set xrange [0.25:{xmax}]
set key outside right top
plot {curves}, {target} with lines dt 2 lw 2 lc rgb 'black' notitle
unset multiplot
"""
    gpath = os.path.splitext(png)[0] + ".gp"
    with open(gpath, "w") as f:
        f.write(script)
    subprocess.run([gp, gpath], check=False)


# ---- the frontier: grown runs against the best scratch model at equal FLOPs -------

# Training bytes of the data (2,576,674 bytes less the last 5%), as
# examples/train reports them: the epochs a run sees.
TRAIN_BYTES = 2447841
GROUPS_FRONTIER = ("frontier", "frontier-seed", "frontier-4x", "frontier-long")


def epochs(name):
    c = base_config()
    return RUNS[name]["iters"] * c["train_micro_batch_size_per_gpu"] * c["seq_length"] / TRAIN_BYTES


class Run:
    """A finished run's evaluations, final loss and training FLOPs."""

    def __init__(self, name, args):
        self.name = name
        self.evals, self.growths = read_run(name, args)
        self.final = self.evals[-1][2]
        self.flops = self.evals[-1][1]

    def reach(self, target):
        """Interpolated FLOPs to reach target, or None."""
        r = reach(self.evals, target)
        return r[2] if r else None


def load(names, args):
    """{name: Run} of the names that have finished."""
    return {n: Run(n, args) for n in names if is_done(n, args)}


def mean_sd(xs):
    """'mean +- sd (n)' with the sample standard deviation, or '-'."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-", None, None
    m = sum(xs) / len(xs)
    sd = (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 if len(xs) > 1 else None
    return m, sd, len(xs)


def fmt_ms(xs, digits=4):
    m, sd, n = mean_sd(xs)
    if m == "-":
        return "-"
    return f"{m:.{digits}f}" + (f" +- {sd:.{digits}f}" if sd is not None else "") + f" (n={n})"


def cell(x, digits=4):
    return "-" if x is None else f"{x:.{digits}f}"


def missing(names, args):
    """The names that have not finished, each with how far it got."""
    return [n + ("" if progress(n, args) == "not run yet" else f" ({progress(n, args)})")
            for n in names if not is_done(n, args)]


def progress(name, args):
    """'not run yet', or how far an unfinished run got."""
    if not os.path.exists(os.path.join(args.runs, name, "log.csv")):
        return "not run yet"
    evals, _ = read_run(name, args)
    if not evals:
        return "started"
    s, _, v = evals[-1]
    return f"unfinished: {v:.4f} at step {s}"


def budget_section(title, grown, scratch_names, sunk, baseline, args, fa, lines):
    """One budget: the grown run against every scratch model at its FLOPs;
    returns the best scratch run's name (or None)."""
    runs = load([grown, baseline] + scratch_names, args)
    lines.append(f"### {title}\n")
    lines.append("| run | slots (qkv/proj/ffn) | steps | epochs | training FLOPs / (a)'s | "
                 "final val loss | FLOPs the grown run needs to reach it / (a)'s | "
                 f"FLOPs it needs to reach {baseline}'s final loss / (a)'s |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|")
    g = runs.get(grown)
    done = [n for n in scratch_names if n in runs]
    best = min(done, key=lambda n: runs[n].final) if done else None
    partial = " of those finished" if len(done) < len(scratch_names) else ""
    by_size = sorted(scratch_names, key=lambda n: -RUNS[n]["start"]["qkv_slot_num"])
    for n in [grown, baseline] + by_size:
        st = RUNS[n]["start"]
        slots = f"{st['qkv_slot_num']}/{st['proj_slot_num']}/{st['ffn_slot_num']}"
        if RUNS[n]["cfg"].get("grow_schedule"):
            slots += " grown to " + " -> ".join(f"{x['qkv']}/{x['proj']}/{x['ffn']} at {x['step']}"
                                                for x in RUNS[n]["cfg"]["grow_schedule"])
        if n not in runs:
            lines.append(f"| {n} | {slots} | {RUNS[n]['iters']} | {epochs(n):.2f} | "
                         f"{budget_of(n) / fa:.3f} | {progress(n, args)} | - | - |")
            continue
        r = runs[n]
        need = "-"
        if g and n != grown:
            x = g.reach(r.final)
            need = f"{x / fa:.3f}" if x else "not reached"
        to_base = "-"
        if baseline in runs:
            x = r.reach(runs[baseline].final)
            to_base = f"{x / fa:.3f}" if x else "not reached"
        name = f"**{n}** (best scratch{partial})" if n == best else n
        lines.append(f"| {name} | {slots} | {RUNS[n]['iters']} | {epochs(n):.2f} | "
                     f"{r.flops / fa:.3f} | {r.final:.4f} | {need} | {to_base} |")
    lines.append("")
    if g and best:
        lines.append(f"At {g.flops / fa:.3f}x (a)'s FLOPs, {grown} ends at **{g.final:.4f}**, "
                     f"the best scratch model{partial} ({best}) at "
                     f"**{runs[best].final:.4f}**: "
                     f"{g.final - runs[best].final:+.4f} nats/byte.")
        if sunk:
            sk = Run(sunk, args).flops if is_done(sunk, args) else None
            x = g.reach(runs[baseline].final) if baseline in runs else None
            if sk is not None and x:
                lines.append(f"It reaches {baseline}'s final loss ({runs[baseline].final:.4f}) "
                             f"at {x / fa:.3f}x (a)'s FLOPs; with the small stage's "
                             f"{sk / fa:.3f}x sunk, growth adds **{(x - sk) / fa:.3f}x** against "
                             f"{runs[baseline].flops / fa:.3f}x for {baseline} from scratch.")
        lines.append("")
    not_run = missing([grown, baseline] + scratch_names, args)
    if not_run:
        lines.append("Not finished: " + ", ".join(not_run) + ".\n")
    return best


def sunk_section(args, fa, lines):
    """The paper's question: a trained small model exists, its cost sunk."""
    lines.append("### The paper's question: growing a small model that already exists\n")
    lines.append("With the small model's training cost sunk (a released checkpoint), the FLOPs "
                 "growth spends after it to reach (a)'s final loss, against (a)'s own from "
                 "scratch (1.000):\n")
    lines.append("| grown run | sunk: the small stage / (a)'s | total FLOPs to reach (a)'s loss / "
                 "(a)'s | growth's own / (a)'s |")
    lines.append("|---|---:|---:|---:|")
    pairs = [(recipe_name(s), "small-to1000" + ("" if s == 1 else f"-seed{s}"), large_name(s))
             for s in SEEDS]
    pairs += [(n, "small", "large") for n in RUNS if n.startswith("official-")]
    pairs += [("recipe-4x", "tiny-to1000", "large"),
              ("recipe-6000", "small-to2000-6000", "large-6000")]
    for g, p, a in pairs:
        runs = load([g, p, a], args)
        if len(runs) < 3:
            continue
        x = runs[g].reach(runs[a].final)
        fa_run = runs[a].flops
        lines.append(f"| {g} (from {p}; against {a}) | {runs[p].flops / fa_run:.3f} | " +
                     (f"{x / fa_run:.3f} | **{(x - runs[p].flops) / fa_run:.3f}** |" if x else
                      "not reached | - |"))
    lines.append("\nThe official runs grow (b), the small model trained to its end (annealed, "
                 "1500 steps); the recipe's runs grow a small model a third of the way "
                 "through one schedule (not annealed).\n")


def budget_of(name):
    """A run's planned training FLOPs (per token of a step, x tokens)."""
    c = base_config()
    r = RUNS[name]
    tokens = c["train_micro_batch_size_per_gpu"] * c["seq_length"]
    return budget(r["start"], r["iters"], r["cfg"].get("grow_schedule", ())) * tokens


def seeds_section(args, fa, best_q, lines):
    """The headline figures over seeds 1-5, paired by seed."""
    lines.append("### Seeds 1-5 (`SET=seeds`)\n")
    best_names = ([FRONTIER[[RUNS[n]["start"]["qkv_slot_num"] for n in FRONTIER].index(best_q)]] +
                  FRONTIER_SEEDS[best_q]) if best_q else [None] * len(SEEDS)
    lines.append("| seed | (a) final | recipe final | best scratch final | recipe - best scratch "
                 "| recipe - (a) | recipe's FLOPs to reach (a)'s loss / (a)'s | "
                 "to reach the best scratch model's / (a)'s | growth FLOPs to (a)'s loss, "
                 "small stage sunk / (a)'s |")
    lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    cols = {k: [] for k in ("a", "r", "b", "rb", "ra", "reach_a", "reach_b", "sunk")}
    for seed, bn in zip(SEEDS, best_names):
        an, rn = large_name(seed), recipe_name(seed)
        pn = "small-to1000" + ("" if seed == 1 else f"-seed{seed}")
        runs = load([an, rn, pn] + ([bn] if bn else []), args)
        a, r, b = runs.get(an), runs.get(rn), runs.get(bn) if bn else None
        v = dict(a=a and a.final, r=r and r.final, b=b and b.final,
                 rb=r.final - b.final if r and b else None,
                 ra=r.final - a.final if r and a else None,
                 reach_a=None, reach_b=None, sunk=None)
        if r and a:
            x = r.reach(a.final)
            v["reach_a"] = x / a.flops if x else None
            if x and pn in runs:
                v["sunk"] = (x - runs[pn].flops) / a.flops
        if r and b:
            x = r.reach(b.final)
            v["reach_b"] = x / (a.flops if a else fa) if x else None
        for k in cols:
            cols[k].append(v[k])

        def c(k, d=4):
            if v[k] is None and r and (b if k == "reach_b" else a) and k in (
                    "reach_a", "reach_b", "sunk"):
                return "not reached"
            return cell(v[k], d) if v[k] is None or k in ("a", "r", "b") else (
                f"{v[k]:+.4f}" if k in ("rb", "ra") else f"{v[k]:.3f}")
        lines.append(f"| {seed} | {c('a')} | {c('r')} | {c('b')} | {c('rb')} | {c('ra')} | "
                     f"{c('reach_a')} | {c('reach_b')} | {c('sunk')} |")
    lines.append(f"| mean +- sd | {fmt_ms(cols['a'])} | {fmt_ms(cols['r'])} | "
                 f"{fmt_ms(cols['b'])} | {fmt_ms(cols['rb'])} | {fmt_ms(cols['ra'])} | "
                 f"{fmt_ms(cols['reach_a'], 3)} | {fmt_ms(cols['reach_b'], 3)} | "
                 f"{fmt_ms(cols['sunk'], 3)} |")
    lines.append("")
    for k, what in (("rb", "the best scratch model"), ("ra", "(a)")):
        m, sd, n = mean_sd(cols[k])
        if m == "-" or sd is None:
            lines.append(f"Recipe minus {what}: fewer than two seeds with both runs; no spread "
                         f"yet.")
            continue
        se = sd / n ** 0.5
        lines.append(f"Recipe minus {what} over {n} seeds: {m:+.4f} +- {sd:.4f} (sd; standard "
                     f"error {se:.4f}): the mean difference is "
                     f"{'larger' if abs(m) > sd else 'not larger'} than the seed-to-seed spread "
                     f"of the difference, and {abs(m) / se:.1f} standard errors from zero.")
    have = [x for x, rr, aa in zip(cols["reach_a"], cols["r"], cols["a"])
            if rr is not None and aa is not None]
    if have:
        lines.append(f"\nThe recipe reaches (a)'s loss in {sum(x is not None for x in have)} of "
                     f"{len(have)} seeds (within its 0.784x).")
    if best_q:
        todo = missing([n for n in best_names[1:]] + [recipe_name(s) for s in SEEDS[1:]] +
                       [large_name(s) for s in SEEDS[1:]], args)
    else:
        todo = ["the frontier's best model's seeds (the frontier has not finished)"]
    if todo:
        lines.append("\nNot finished: " + ", ".join(todo) + ".")
    lines.append("")
    return cols


def toward_section(args, fa, lines):
    """The recipes that grow toward the frontier's best size, against the
    best scratch model and (a) at the same budget (seed 1)."""
    lines.append("### Growing toward the frontier's best size (`SET=toward`, seed 1)\n")
    lines.append("The same budget as the recipe, spent on more steps: each run starts smaller "
                 "and ends at or just past the frontier's best size, growing at equal "
                 "fractions of one schedule with the trainer's defaults.\n")
    runs = load(TOWARD + FRONTIER + ["large", "recipe"], args)
    done = [n for n in FRONTIER if n in runs]
    best = min(done, key=lambda n: runs[n].final) if done else None
    lines.append("| run | steps | epochs | training FLOPs / (a)'s | final val loss | minus the best "
                 "scratch model's | FLOPs to reach (a)'s loss / (a)'s | FLOPs to reach the "
                 "best scratch model's loss / (a)'s |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for n in ["recipe"] + TOWARD:
        if n not in runs:
            lines.append(f"| {n} | {RUNS[n]['iters']} | {epochs(n):.2f} | "
                         f"{budget_of(n) / fa:.3f} | {progress(n, args)} | - | - | - |")
            continue
        r = runs[n]
        cols = []
        for other in ("large", best):
            if other in runs and other is not None:
                x = r.reach(runs[other].final)
                cols.append(f"{x / fa:.3f}" if x else "not reached")
            else:
                cols.append("-")
        diff = f"{r.final - runs[best].final:+.4f}" if best else "-"
        lines.append(f"| {n} | {RUNS[n]['iters']} | {epochs(n):.2f} | {r.flops / fa:.3f} | "
                     f"{r.final:.4f} | {diff} | {cols[0]} | {cols[1]} |")
    lines.append("")
    if best:
        lines.append(f"The best scratch model at this budget: {best}, {runs[best].final:.4f}.\n")
    best_q = frontier_best(args)
    if not best_q:
        return
    grown = [TOWARD_BEST] + TOWARD_SEEDS
    scratch = [FRONTIER[[RUNS[n]["start"]["qkv_slot_num"] for n in FRONTIER].index(best_q)]]
    scratch += FRONTIER_SEEDS[best_q]
    runs = load(grown + scratch + [large_name(seed) for seed in SEEDS], args)
    lines.append("Seeds of 48 -> 64 -> 80 (`SET=toward-seeds`) against the frontier's best "
                 "model with the same seed:\n")
    lines.append("| seed | 48 -> 64 -> 80 final | best scratch final | difference | FLOPs to "
                 "reach (a)'s loss (same seed) / (a)'s |")
    lines.append("|---:|---:|---:|---:|---:|")
    diffs, gs, bs, reached = [], [], [], []
    for seed, g, b in zip(SEEDS, grown, scratch):
        gv = runs[g].final if g in runs else None
        bv = runs[b].final if b in runs else None
        d = gv - bv if gv is not None and bv is not None else None
        diffs.append(d)
        gs.append(gv)
        bs.append(bv)
        a = runs.get(large_name(seed))
        x = runs[g].reach(a.final) if a and g in runs else None
        reach_a = "-" if not (a and g in runs) else (f"{x / a.flops:.3f}" if x else "not reached")
        if a and g in runs:
            reached.append(x / a.flops if x else None)
        lines.append(f"| {seed} | {cell(gv) if g in runs else progress(g, args)} | {cell(bv)} | "
                     f"{'-' if d is None else f'{d:+.4f}'} | {reach_a} |")
    lines.append(f"| mean +- sd | {fmt_ms(gs)} | {fmt_ms(bs)} | {fmt_ms(diffs)} | "
                 f"reached in {sum(x is not None for x in reached)} of {len(reached)}: "
                 f"{fmt_ms(reached, 3)} |")
    m, sd, k = mean_sd(diffs)
    if m != "-" and sd is not None:
        lines.append(f"\nOver {k} paired seeds the difference is {m:+.4f} +- {sd:.4f} (sd; "
                     f"standard error {sd / k ** 0.5:.4f}): "
                     f"{'larger' if abs(m) > sd else 'not larger'} than its seed-to-seed spread.")
    lines.append("")


def frontier_report(args, fa):
    """The frontier part of summary.md, frontier.csv and frontier.png."""
    lines = ["## Against the compute-matched frontier\n",
             "Every scratch model trains on its own full schedule (100 warmup steps, cosine to "
             "min_lr over its own length) for as many steps as the grown run's FLOPs buy "
             "(`scaling.py`'s `steps_for`).  Epochs: training bytes seen / the "
             f"{TRAIN_BYTES:,} training bytes.\n"]
    budget_section("At the recipe's budget (`SET=frontier`, seed 1)", "recipe", FRONTIER,
                          "small-to1000", "large", args, fa, lines)
    toward_section(args, fa, lines)
    best_q = frontier_best(args)
    seeds_section(args, fa, best_q, lines)
    sunk_section(args, fa, lines)
    budget_section("A 4x growth (`SET=growth4x`): tiny -> small -> large", "recipe-4x",
                   FOURX_FRONTIER, "tiny-to1000", "large", args, fa, lines)
    budget_section("A longer horizon (`SET=long`): 6000 steps", "recipe-6000", LONG_FRONTIER,
                   "small-to2000-6000", "large-6000", args, fa, lines)
    # final loss against FLOPs: every scratch run, the frontier, the grown runs
    scratch_runs = load(["small", "large", "large-6000"] + FRONTIER + FOURX_FRONTIER +
                        LONG_FRONTIER, args)
    with open(os.path.join(args.results, "frontier.csv"), "w") as f:
        f.write("run,kind,slots,steps,epochs,flops,flops_over_a,final_val_loss,sd,n\n")
        for n, r in scratch_runs.items():
            f.write(f"{n},scratch,{RUNS[n]['start']['qkv_slot_num']},{RUNS[n]['iters']},"
                    f"{epochs(n):.3f},{r.flops:.6g},{r.flops / fa:.5f},{r.final:.6f},,1\n")
        grown = [("recipe", [recipe_name(s) for s in SEEDS]), ("recipe-4x", ["recipe-4x"]),
                 ("recipe-6000", ["recipe-6000"]),
                 *[(n, [n] + (TOWARD_SEEDS if n == TOWARD_BEST else [])) for n in TOWARD],
                 ("official-random-follow_n-3000", ["official-random-follow_n-3000"])]
        for label, names in grown:
            rs = load(names, args)
            if not rs:
                continue
            m, sd, k = mean_sd([r.final for r in rs.values()])
            r0 = next(iter(rs.values()))
            f.write(f"{label},grown,{RUNS[names[0]]['start']['qkv_slot_num']},"
                    f"{RUNS[names[0]]['iters']},{epochs(names[0]):.3f},{r0.flops:.6g},"
                    f"{r0.flops / fa:.5f},{m:.6f},{sd or 0:.6f},{k}\n")
    # the frontier: the best scratch model at each budget (runs within 1% of
    # each other's FLOPs share one)
    pts = sorted((r.flops / fa, r.final) for r in scratch_runs.values())
    front = []
    for x, y in pts:
        if front and x < front[-1][0] * 1.01:
            front[-1] = (front[-1][0], min(front[-1][1], y), front[-1][2] + 1)
        else:
            front.append((x, y, 1))
    # a budget where one size ran ((a), (b)) has no frontier: only its point
    front = [f for f in front if f[2] > 1]
    tried = ", ".join(f"{k} at {x:.3f}x" for x, _, k in front)
    with open(os.path.join(args.results, "frontier-line.csv"), "w") as f:
        f.write("flops_over_a,best_scratch_final_val_loss\n")
        f.writelines(f"{x:.5f},{y:.6f}\n" for x, y, _ in front)
    gp = shutil.which("gnuplot")
    if gp:
        png = os.path.join(args.results, "frontier.png")
        res = args.results
        script = f"""set terminal pngcairo size 1200,760 font ',11' noenhanced
set output '{png}'
set datafile separator ','
set title "Final validation loss against training FLOPs: scratch models on their own schedules (the frontier: the best at each budget)\\nand grown runs (mean +- sd over the seeds that finished)"
set xlabel "training FLOPs / (a)'s ({fa:.3g})"
set ylabel 'final validation loss (nats/byte)'
set grid
set key top right
set offsets graph 0.03, graph 0.15, graph 0.05, graph 0.05
plot '{res}/frontier-line.csv' skip 1 using 1:2 with linespoints lw 2 pt 7 lc rgb 'black' title 'best scratch model at each budget (sizes tried: {tried})', \
     '{res}/frontier.csv' skip 1 using (strcol(2) eq "scratch" ? $7 : NaN):8 with points pt 6 ps 1.4 lc rgb 'gray40' title 'scratch models', \
     '{res}/frontier.csv' skip 1 using (strcol(2) eq "grown" ? $7 : NaN):8:9 with yerrorbars pt 5 ps 1.6 lw 2 lc rgb 'red' title 'grown runs', \
     '{res}/frontier.csv' skip 1 using (strcol(2) eq "grown" ? $7 : NaN):8:(strcol(1)) with labels offset 1,-1 left font ',9' notitle
"""
        with open(os.path.join(res, "frontier.gp"), "w") as f:
            f.write(script)
        subprocess.run([gp, os.path.join(res, "frontier.gp")], check=False)
    return "\n".join(lines) + "\n"


def report(names, args, mode, wall=None):
    csv_dir = args.results if mode == "summary" else os.path.join(args.results, "variants")
    target, fa, steps_a, rows, curves = analyse(names, args, csv_dir)
    for r in rows:
        r["csv"] = os.path.join(csv_dir, f"{r['name']}.csv")
    shown = [r for r in rows if r["group"] != "prefix"]
    if mode != "summary":
        for r in shown:  # the config the run ran with
            src = os.path.join(args.runs, r["name"], "config.yml")
            with open(os.path.join(csv_dir, f"{r['name']}.yml"), "w") as f:
                f.write(open(src).read() if os.path.exists(src) else config_text(r["name"]))
    head = (f"(a)'s final validation loss: **{target:.4f}** nats/byte after {steps_a} steps, "
            f"{fa:.4g} training FLOPs (6N + 12LTd per token, N the weights entering a matmul, "
            f"the tied head once).  Validation: the first 20 batches (B=16, T=128) of the "
            f"last 5% of the bytes, every 100 steps and right before and after a growth.\n\n")
    if mode == "summary":
        with open(os.path.join(args.results, "curves.csv"), "w") as f:
            f.write("run,step,flops,flops_over_a,val_loss,point\n")
            for n, s, fl, v, what in curves:
                f.write(f"{n},{s},{fl:.6g},{fl / fa:.5f},{v:.6f},{what}\n")
        path = os.path.join(args.results, "summary.md")
        with open(path, "w") as f:
            f.write("# Incremental scaling on Debian's fortunes: results of `make scaling`\n\n")
            f.write(head + table(shown) + "\n\n")
            for r in shown:
                if r["name"] == "recipe" and r["reach"]:
                    f.write(f"The shipped recipe reaches (a)'s final loss with "
                            f"**{r['reach'][1] / fa:.3f}x** (a)'s training FLOPs, the small "
                            f"stage included.\n\n")
            f.write(frontier_report(args, fa))
            f.write("Runs (the FLOPs columns of the first table are fractions of the run's "
                    "baseline: (a) with the same seed; large-6000 for the 6000-step runs):\n\n" +
                    "".join(f"- **{r['name']}**: {r['desc']}\n" for r in shown))
            if wall is not None:
                f.write(f"\nWall time of the default set's runs (`make scaling`): "
                        f"{wall / 60:.1f} min ({args.jobs} jobs x {args.threads} thread(s)).\n")
        # the replicates are measured against their own seed's (a): table only
        plot([r for r in shown if r["group"] in ("baseline", "official", "recipe")], args,
             target, fa,
             os.path.join(args.results, "scaling.png"),
             "TokenFormer on fortunes: validation loss vs training FLOPs")
    else:
        path = os.path.join(args.results, "variants.md")
        with open(path, "w") as f:
            f.write("# Every variant of the recipe search\n\n")
            f.write(head + "All grown from the small model (qkv=proj=64, ffn=256) to the large "
                    "slots unless the name says otherwise; configs in runs/NAME/config.yml "
                    "(regenerate with scaling.py).\n\n")
            f.write(table(shown) + "\n\n")
            f.write("".join(f"- **{r['name']}** ({r['group']}): {r['desc']}\n" for r in shown))
        plot(shown, args, target, fa, os.path.join(args.results, "variants.png"),
             "Recipe search: validation loss vs training FLOPs")
    print(open(path).read())


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", default="default")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "examples"))
    ap.add_argument("--runs", default=os.path.join(HERE, "runs"))
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--wall", type=float, help="with --report-only: the runs' wall time (s)")
    args = ap.parse_args()
    if args.list:
        for n, r in RUNS.items():
            print(f"{n:36s} {r['group']:9s} {r['desc']}")
        return
    names = set_names(args.set, args)
    for n in names:
        if n not in RUNS:
            sys.exit(f"scaling: no run '{n}' (see --list)")
    # a run of search variants only reports on every run there is a log of
    # (results/variants.md); anything else on the default set plus the
    # official +3000 and replicate runs there are logs of (results/summary.md)
    mode = "variants" if all(RUNS[n]["group"] in ("search", "control") for n in names) \
        else "summary"
    t_all = time.time()
    wall = args.wall
    if not args.report_only:
        failed = run_all(lambda: set_names(args.set, args), args, t_all)
        wall = time.time() - t_all
        print(f"runs finished in {wall:.0f} s wall" + (f"; FAILED: {failed}" if failed else ""))
        if failed:
            sys.exit(1)
        if args.set != "default":
            wall = args.wall  # the summary's wall time is the default set's
    logged = [n for n in RUNS if os.path.exists(os.path.join(args.runs, n, "log.csv"))]
    if mode == "variants":
        names = logged
    else:
        names = SETS["default"] + [n for n in logged if RUNS[n]["group"] == "replicate" or
                                   (n.startswith("official-") and n.endswith("-3000")) or
                                   (RUNS[n]["group"] in GROUPS_FRONTIER + ("growth4x", "long", "toward", "toward-seed")
                                    and is_done(n, args))]
    if "large" not in names:
        names = ["large"] + names
    report(needed(names), args, mode, wall)


if __name__ == "__main__":
    main()
