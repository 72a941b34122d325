"""The seed paper's three experiments as parametrized tests (``seed_experiments.py`` prints the
same tables from one script): one-shot SI-SDR per stem (Fig. 1), the oracle predictor (Fig. 2)
and progressive inference per step with paired Wilcoxon tests (Fig. 3).

    pytest benchmarks/test_seed_experiments.py [--bench-tracks 8] [--demix-autosave]
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from demixbench import STEMS
from demixbench.reports.stats import compare_paired

SEPARATORS = ["irm2", "mwf", "hpss_repet", "hpss_nmf", "mix"]
GAINS = "1/1.5/2/3/4"
STEPS = 5


@pytest.fixture(params=["synthetic", "demo"])
def dataset(request, bench_tracks):
    return f"synthetic:{bench_tracks}" if request.param == "synthetic" else "demo"


def fmt(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.2f}"


def mean(values) -> float:
    v = [x for x in values if not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


@pytest.mark.parametrize("separator", SEPARATORS)
def test_fig1_one_shot_si_sdr(separation_benchmark, tables, separator, dataset):
    r = separation_benchmark(separator, dataset=dataset, metrics=["si_sdr"])
    cells = [fmt(mean(r.values(t, "si_sdr").values())) if t in r.targets else "-" for t in STEMS]
    tables.add("Fig. 1: one-shot SI-SDR per stem (dB, mean over tracks)",
               f"{separator:<12} {dataset:<12} " + " ".join(f"{c:>7}" for c in cells))
    assert any(not math.isnan(v) for t in r.targets for v in r.values(t, "si_sdr").values())


@pytest.mark.parametrize("separator", SEPARATORS)
def test_fig2_oracle_predictor(separation_benchmark, tables, separator, dataset):
    r = separation_benchmark(separator, dataset=dataset, metrics=["si_sdr"],
                             strategy=f"oracle-gain:target=vocals,gains={GAINS}")
    assert r.steps == list(range(len(GAINS.split("/"))))
    for step, gain in enumerate(GAINS.split("/")):
        cells = [fmt(mean(r.values(t, "si_sdr", step).values())) for t in STEMS]
        tables.add("Fig. 2: oracle predictor, SI-SDR per stem as the vocals' gain rises",
                   f"{separator:<12} {dataset:<12} gain {gain:<4} "
                   + " ".join(f"{t} {c:>7}" for t, c in zip(STEMS, cells)))


@pytest.mark.parametrize("target", STEMS)
@pytest.mark.parametrize("separator", SEPARATORS)
def test_fig3_progressive(separation_benchmark, tables, separator, target, dataset):
    r = separation_benchmark(separator, dataset=dataset, metrics=["si_sdr"],
                             strategy=f"progressive:target={target},steps={STEPS},schedule=linear")
    base = r.values(target, "si_sdr", 0)
    tracks = sorted(base)
    cells, means = [], [mean(base.values())]
    for n in range(1, STEPS + 1):
        step = r.values(target, "si_sdr", n)
        p = compare_paired([base[k] for k in tracks], [step[k] for k in tracks])
        means.append(mean(step.values()))
        cells.append(f"{fmt(means[-1])} ({fmt(p.median_diff)}, p={fmt(p.p)})")
    best = int(np.nanargmax(np.round(means, 6))) if not all(math.isnan(m) for m in means) else 0
    tables.add("Fig. 3: progressive inference, SI-SDR of the target per step "
               "(median paired Δ to step 0, Wilcoxon p)",
               f"{separator:<12} {dataset:<12} {target:<7} step0 {fmt(means[0])}  "
               + "  ".join(cells) + f"  best {best}")
    assert r.steps == list(range(STEPS + 1))
