"""The strength-ladder tables (benchmarks/strength_ladder.py): paired gains per step of each
separator's progressive target, Holm over the run, Spearman ρ of one-shot quality against gain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr, wilcoxon

from demixbench.reports.ladder import (
    ladder_curves,
    markdown,
    mode_of,
    strength_correlation,
)
from demixbench.reports.stats import holm

LINEAR = {"strategy": "progressive", "target": "vocals", "steps": 2, "wiener": False,
          "others": "step0", "schedule": "linear"}
ADAPTIVE = {**LINEAR, "adaptive": "blind", "candidates": 2, "wiener": True}
CONFIGS = {"lin": LINEAR, "ada": ADAPTIVE}
# one-shot quality and per-step gain of each separator: the weaker, the larger the gain
LADDER = {"weak": (0.0, [0.0, 1.0, 2.0]), "middle": (4.0, [0.0, 0.5, 0.2]),
          "strong": (8.0, [0.0, -0.2, -0.6]), "irm1": (15.0, [0.0, -1.0, -3.0])}


def _rows(n_tracks: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for sep, (base, gains) in LADDER.items():
        for t in range(n_tracks):
            level = base + rng.normal(0, 1)
            for step, gain in enumerate(gains):
                noise = rng.normal(0, 0.05) if step else 0.0
                for target, value in (("vocals", level + gain + noise), ("drums", level - 3)):
                    for strategy_hash in ("lin", "ada"):
                        rows.append({"dataset": "synthetic:8", "track": f"song-{t}",
                                     "separator": sep, "oracle": sep == "irm1",
                                     "strategy_hash": strategy_hash, "step": step,
                                     "target": target, "metric": "usdr", "value": value})
    return pd.DataFrame(rows)


def test_curves_pair_the_target_over_tracks_and_correct_over_the_run():
    rows = _rows()
    curves = ladder_curves(rows, CONFIGS, metrics=["usdr"])
    assert {(c["separator"], c["mode"]) for c in curves} == {
        (s, m) for s in LADDER for m in ("linear", "adaptive-blind+wiener")}
    assert {c["target"] for c in curves} == {"vocals"}  # drums are step 0's, not a test
    weak = next(c for c in curves if c["separator"] == "weak" and c["mode"] == "linear")
    wide = rows[(rows["separator"] == "weak") & (rows["strategy_hash"] == "lin")
                & (rows["target"] == "vocals")].pivot(index="track", columns="step",
                                                      values="value")
    assert weak["one_shot"] == pytest.approx(np.median(wide[0]), abs=1e-3)
    assert weak["best_step"] == 2 and weak["final"]["step"] == 2 and weak["worst"]["step"] == 1
    d = wide[2] - wide[0]
    assert weak["best"]["median"] == pytest.approx(np.median(d), abs=1e-3)
    assert weak["best"]["p"] == pytest.approx(wilcoxon(d).pvalue, abs=1e-4)
    assert weak["best"]["lo"] <= weak["best"]["median"] <= weak["best"]["hi"]
    strong = next(c for c in curves if c["separator"] == "strong" and c["mode"] == "linear")
    assert strong["best_step"] == 0 and strong["best"]["step"] == 1  # no later step helps
    assert strong["worst"]["median"] == pytest.approx(-0.6, abs=0.05)
    # Holm over every later step of every blind curve of the metric: 3 separators x 2 modes x
    # 2 steps; the oracle's curves are a family of their own
    family = [s for c in curves if not c["oracle"] for s in c["steps"] if s["step"]]
    assert len(family) == 12
    want = holm([s["p"] for s in family])
    assert [s["p_holm"] for s in family] == pytest.approx(want)
    oracle = [s for c in curves if c["oracle"] for s in c["steps"] if s["step"]]
    assert [s["p_holm"] for s in oracle] == pytest.approx(holm([s["p"] for s in oracle]))


def test_oracle_rows_do_not_move_the_blind_holm_p():
    rows = _rows()
    with_oracle = ladder_curves(rows, CONFIGS, metrics=["usdr"])
    blind_only = ladder_curves(rows[rows["separator"] != "irm1"], CONFIGS, metrics=["usdr"])

    def blind(curves):
        return [s["p_holm"] for c in curves if not c["oracle"] for s in c["steps"] if s["step"]]
    assert blind(with_oracle) == blind(blind_only)


def test_excerpt_pieces_pair_at_song_level():
    rows = _rows(n_tracks=4)
    pieces = pd.concat([rows.assign(track=rows["track"] + f" #{i}",
                                    value=rows["value"] + 0.01 * i) for i in (1, 2, 3)])
    curves = ladder_curves(pieces, CONFIGS, metrics=["usdr"])
    weak = next(c for c in curves if c["separator"] == "weak" and c["mode"] == "linear")
    assert weak["n"] == 4  # songs, not 12 excerpts
    assert "cannot reach p < 0.05" in weak["note"]  # 4 pairs: the smallest p is 0.125


def test_correlation_says_weaker_separators_gain_more_without_the_oracles():
    curves = ladder_curves(_rows(), CONFIGS, metrics=["usdr"])
    table = {r["mode"]: r for r in strength_correlation(curves)}
    lin = table["linear"]
    assert lin["points"] == 3 and lin["separators"] == 3  # irm1 is an upper bound, not a rung
    pts = [c for c in curves if c["mode"] == "linear" and not c["oracle"]]
    rho = spearmanr([c["one_shot"] for c in pts], [c["final"]["median"] for c in pts])
    assert lin["rho_final"] == pytest.approx(rho.statistic) == pytest.approx(-1.0)
    # three separators in perfect reverse order: the t approximation says p = 0; the exact
    # permutation p is 2 of the 6 pairings
    assert rho.pvalue == 0 and lin["p_final"] == pytest.approx(1 / 3)
    text = markdown(curves, list(table.values()), "synthetic")
    assert "| weak | vocals | linear |" in text and "| irm1 (oracle) | vocals |" in text
    assert "| linear | uSDR | 3 | -1.00 |" in text
    # every step of every curve, with its raw and Holm p
    weak = next(c for c in curves if c["separator"] == "weak" and c["mode"] == "linear")
    step2 = weak["steps"][2]
    assert (f"| weak | vocals | linear | uSDR | 2 | {step2['median']:+.2f} [") in text
    assert text.count("| weak | vocals |") == 2 + 4  # 2 summary rows, 2 modes x 2 steps


def test_mode_names_the_schedule_or_the_adaptive_rule():
    assert mode_of(LINEAR) == "linear"
    assert mode_of(ADAPTIVE) == "adaptive-blind+wiener"
    assert mode_of({**LINEAR, "schedule": "cosine"}) == "cosine"


def test_holm_is_computed_on_unrounded_p():
    """p rounded to 4 digits before Holm changed corrected p-values (0.000123 -> 0.0001)."""
    rows = _rows(n_tracks=12)
    curves = ladder_curves(rows, CONFIGS, metrics=["usdr"])
    family = [(c, s) for c in curves if not c["oracle"] for s in c["steps"] if s["step"]]
    exact = []
    for c, s in family:
        sep_rows = rows[(rows["separator"] == c["separator"]) & (rows["target"] == "vocals")
                        & (rows["strategy_hash"] == ("lin" if c["mode"] == "linear" else "ada"))]
        wide = sep_rows.pivot(index="track", columns="step", values="value")
        exact.append(wilcoxon(wide[s["step"]] - wide[0]).pvalue)
    assert [s["p"] for _, s in family] == pytest.approx(exact, rel=1e-12)
    assert [s["p_holm"] for _, s in family] == pytest.approx(holm(exact), rel=1e-12)
