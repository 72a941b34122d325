"""The seed paper's three experiments for every available separator, with paired statistics.

    python benchmarks/seed_experiments.py [--tracks 8] [--steps 5] [--separators irm2,mix] [--wiener]

1. one-shot per-stem SI-SDR (the paper's Fig. 1);
2. the oracle predictor: the true stems remixed with the target's gain raised (Fig. 2);
3. progressive inference, per-step SI-SDR of the target for each target stem (Fig. 3), with the
   paired difference to step 0 across tracks and a two-sided Wilcoxon signed-rank p-value.
   ``--wiener`` repeats it with the paper's Wiener switch on (every step post-filtered).

Data: the embedded synthetic set (``--tracks`` songs) and the CC0 demo excerpts. SI-SDR is
averaged over tracks (mean), as the paper does; NaN rows (a silent stem) are left out of means
and of the pairs.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import wilcoxon

from demixbench import STEMS
from demixbench.runs.runner import RunConfig, Runner
from demixbench.runs.store import ResultsStore


def run(store: ResultsStore, datasets, separators, strategies, excerpt) -> list[dict]:
    config = RunConfig(datasets=datasets, separators=separators, metrics=["si_sdr"],
                       excerpt=excerpt, strategies=strategies)
    summary = Runner(config, store, cache_dir=None).run()
    return store.rows(summary.run_id)


def by_key(rows, *keys) -> dict:
    out: dict = defaultdict(dict)
    for r in rows:
        if not math.isnan(r["value"]):
            out[tuple(r[k] for k in keys)][(r["dataset"], r["track"])] = r["value"]
    return out


def mean(values) -> float:
    v = [x for x in values if not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2f}"


def paired(step: dict, base: dict) -> tuple[float, float, int]:
    """Mean paired difference, Wilcoxon p-value, number of pairs."""
    common = sorted(set(step) & set(base))
    diffs = np.array([step[k] - base[k] for k in common])
    # differences below 1e-6 dB are float32 rounding of the blend (mix: (1-b) y + b y != y
    # bit for bit), not effects: count them as ties so they do not produce p-values
    diffs[np.abs(diffs) < 1e-6] = 0.0
    nonzero = diffs[diffs != 0]
    if len(diffs) == 0:
        return math.nan, math.nan, 0
    p = float(wilcoxon(nonzero).pvalue) if len(nonzero) else 1.0
    return float(diffs.mean()), p, len(diffs)


def figure1(rows) -> None:
    print("\n## 1. One-shot SI-SDR per stem (dB, mean over tracks)\n")
    data = by_key(rows, "separator", "target")
    seps = sorted({k[0] for k in data})
    targets = [t for t in (*STEMS, "accompaniment") if any((s, t) in data for s in seps)]
    print("| separator | " + " | ".join(targets) + " |")
    print("|---|" + "---|" * len(targets))
    for s in seps:
        print(f"| {s} | " + " | ".join(fmt(mean(data.get((s, t), {}).values())) for t in targets)
              + " |")


def figure2(rows, gains) -> None:
    print("\n## 2. Oracle predictor: SI-SDR per stem as the vocals' gain rises (dB, mean)\n")
    data = by_key(rows, "separator", "step", "target")
    for s in sorted({k[0] for k in data}):
        print(f"**{s}**\n")
        print("| vocals gain | " + " | ".join(STEMS) + " |")
        print("|---|" + "---|" * len(STEMS))
        for step, gain in enumerate(gains):
            cells = [fmt(mean(data.get((s, step, t), {}).values())) for t in STEMS]
            print(f"| {gain:g} | " + " | ".join(cells) + " |")
        print()


def figure3(rows_by_target, steps) -> None:
    print("\n## 3. Progressive inference: SI-SDR of the target per step (dB)\n")
    print("Δ: mean paired difference to step 0 over tracks; p: two-sided Wilcoxon signed-rank.\n")
    for target, rows in rows_by_target.items():
        data = by_key([r for r in rows if r["target"] == target], "separator", "step")
        print(f"**target {target}**\n")
        print("| separator | step 0 | " + " | ".join(f"step {n} (Δ, p)" for n in range(1, steps + 1))
              + " | best step | pairs |")
        print("|---|---|" + "---|" * (steps + 2))
        for s in sorted({k[0] for k in data}):
            base = data.get((s, 0), {})
            cells, means = [], [mean(base.values())]
            for n in range(1, steps + 1):
                d, p, _ = paired(data.get((s, n), {}), base)
                means.append(mean(data.get((s, n), {}).values()))
                cells.append(f"{fmt(means[-1])} ({d:+.2f}, {p:.3f})" if not math.isnan(d) else "n/a")
            rounded = np.round(means, 6)  # float32 noise must not pick a "best" step
            best = int(np.nanargmax(rounded)) if not all(math.isnan(m) for m in means) else 0
            print(f"| {s} | {fmt(means[0])} | " + " | ".join(cells) + f" | {best} | {len(base)} |")
        print()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tracks", type=int, default=8, help="synthetic songs (plus the 2 demo ones)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--excerpt", type=float, default=30.0)
    p.add_argument("--separators", help="comma-separated (default: every available one)")
    p.add_argument("--gains", default="1/1.5/2/3/4")
    p.add_argument("--targets", default=",".join(STEMS))
    p.add_argument("--store", type=Path, help="keep the rows in this store (default: temporary)")
    p.add_argument("--wiener", action="store_true",
                   help="also run progressive inference with the Wiener post-filter on every step")
    args = p.parse_args()
    datasets = [f"synthetic:{args.tracks}", "demo"]
    separators = args.separators.split(",") if args.separators else None
    gains = [float(g) for g in args.gains.split("/")]
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(args.store or Path(tmp) / "seed.sqlite")
        print(f"# Seed experiments on {' + '.join(datasets)}, {args.steps} linear steps")
        figure1(run(store, datasets, separators, [], args.excerpt))
        figure2(run(store, datasets, separators, [f"oracle-gain:target=vocals,gains={args.gains}"],
                    args.excerpt), gains)
        per_target = {}
        for target in args.targets.split(","):
            spec = f"progressive:target={target},steps={args.steps},schedule=linear"
            per_target[target] = run(store, datasets, separators, [spec], args.excerpt)
        figure3(per_target, args.steps)
        if args.wiener:
            print("\n## With the Wiener post-filter after every step (the paper's switch)")
            figure3({t: run(store, datasets, separators,
                            [f"progressive:target={t},steps={args.steps},schedule=linear,wiener=true"],
                            args.excerpt) for t in args.targets.split(",")}, args.steps)
        store.close()


if __name__ == "__main__":
    main()
