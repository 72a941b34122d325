"""The strength-ladder study's tables: does progressive inference help weaker separators more?

Input: the rows of one run in which several separators (blind ones of different strength and
oracles) ran with progressive strategies (``progressive:target=T,...``, schedules and the blind
adaptive β, with and without the Wiener switch). Output, per metric:

- one curve per (separator, progressive configuration): the target's value at step 0 (median over
  tracks) and every step's paired difference to step 0 (median, bootstrap 95 % CI, Wilcoxon p),
  with Holm's correction over every step of every curve of the run (one family per metric), the
  best step, the final step and the worst step — :func:`~demixbench.reports.steps.step_comparisons`
  does the pairing, as for the HTML report;
- the ladder's answer: over the blind separators' (separator, target) points of one
  configuration, Spearman's rank correlation between one-shot quality and gain (best and final
  step), one point per separator (medians over its targets: a separator's targets are not
  independent). A negative ρ means the weaker the separator, the larger the gain: the seed
  paper's conjecture. Tracks are paired at song level (excerpt pieces of a song averaged), and
  oracle curves are their own Holm family. Rank correlation because one-shot quality and
  gain are on different scales and a few strong points should not decide it; its p-value is
  the exact permutation test's (scipy's ``permutation_test`` over every pairing), since a
  ladder has a handful of separators (:func:`spearman`).

``markdown`` writes those tables for a terminal, a closing note or a README.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..metrics import METRICS
from .leaderboard import metric_label
from .stats import fmt
from .steps import best_final_worst, holm_over_steps, small_sample_note, song_wide, step_comparisons

MODE_LINEAR = "linear"


def progressive_configs(configs: dict) -> dict[str, dict]:
    """The run's progressive strategy configurations by strategy hash."""
    return {h: c for h, c in configs.items() if c.get("strategy") == "progressive"}


def mode_of(config: dict) -> str:
    """How a progressive configuration picks β: its schedule, or ``adaptive-blind`` /
    ``adaptive-oracle``; ``+wiener`` when every step is post-filtered."""
    mode = f"adaptive-{config['adaptive']}" if config.get("adaptive") else config.get(
        "schedule", MODE_LINEAR)
    return mode + ("+wiener" if config.get("wiener") else "")


def ladder_curves(rows: pd.DataFrame, configs: dict,
                  metrics: Sequence[str] = ("usdr", "si_sdr")) -> list[dict]:
    """One entry per (separator, progressive configuration, metric), the target's steps only."""
    progressive = progressive_configs(configs)
    rows = rows[rows["strategy_hash"].isin(list(progressive))]
    out = []
    for metric in metrics:
        higher = METRICS[metric].higher_is_better if metric in METRICS else True
        part = rows[rows["metric"] == metric]
        for (sep, st), g in part.groupby(["separator", "strategy_hash"], sort=True):
            config = progressive[st]
            g = g[g["target"] == config["target"]]
            if g.empty:
                continue
            wide = song_wide(g)  # pieces of a song averaged: n counts songs
            if 0 not in wide.columns or len(wide.columns) < 2:
                continue
            steps, best = step_comparisons(wide, higher)
            out.append({"separator": sep, "oracle": bool(g["oracle"].iloc[0]),
                        "target": config["target"], "mode": mode_of(config),
                        "metric": metric_label(metric), "one_shot": steps[0]["value"],
                        "n": steps[0]["n"], "steps": steps, "best_step": best,
                        "note": small_sample_note(steps[0]["n"])})
    holm_over_steps(out)
    for c in out:
        c["best"], c["final"], c["worst"] = best_final_worst(c["steps"]) or (None, None, None)
    return out


def spearman(x: list[float], y: list[float]) -> tuple[float, float]:
    """Spearman's ρ and its two-sided p from the permutation distribution (exact: every
    pairing, for up to 8 points; 20,000 seeded resamples beyond): with a handful of
    separators the t approximation scipy's ``spearmanr`` uses is no test at all (3 points in
    perfect order give it p = 0; every pairing gives 2/6)."""
    from scipy.stats import permutation_test, rankdata, spearmanr

    rx, ry = rankdata(x), rankdata(y)

    def rho(a, b, axis=-1):  # Pearson's r of the ranks, vectorised over resamples
        a = a - a.mean(axis=axis, keepdims=True)
        b = b - b.mean(axis=axis, keepdims=True)
        return (a * b).sum(axis=axis) / np.sqrt((a * a).sum(axis=axis) * (b * b).sum(axis=axis))

    res = permutation_test((rx, ry), rho, permutation_type="pairings", vectorized=True,
                           n_resamples=40320 if len(x) <= 8 else 20000,
                           alternative="two-sided", random_state=0)
    return float(spearmanr(x, y).statistic), float(res.pvalue)


def strength_correlation(curves: list[dict]) -> list[dict]:
    """Per (mode, metric): Spearman's ρ between one-shot quality and the best-step and
    final-step gains, over the blind separators: one point per separator (the medians over its
    targets), since a separator's targets are not independent of each other. Oracles are
    upper bounds, never points of the ladder."""
    out = []
    keys = sorted({(c["mode"], c["metric"]) for c in curves})
    for mode, metric in keys:
        pts = [c for c in curves if (c["mode"], c["metric"]) == (mode, metric)
               and not c["oracle"] and c["one_shot"] is not None and c["best"] is not None]
        by_sep: dict[str, list[dict]] = {}
        for c in pts:
            by_sep.setdefault(c["separator"], []).append(c)
        row = {"mode": mode, "metric": metric, "points": len(by_sep),
               "separators": len(by_sep)}
        x = [float(np.median([c["one_shot"] for c in cs])) for cs in by_sep.values()]
        for which in ("best", "final"):
            y = [float(np.median([c[which]["median"] for c in cs if c[which]["median"]
                                  is not None] or [math.nan])) for cs in by_sep.values()]
            ok = [(a, b) for a, b in zip(x, y) if math.isfinite(b)]
            if len(ok) >= 3 and len({a for a, _ in ok}) > 1 and len({b for _, b in ok}) > 1:
                row[f"rho_{which}"], row[f"p_{which}"] = spearman([a for a, _ in ok],
                                                                  [b for _, b in ok])
            else:
                row[f"rho_{which}"], row[f"p_{which}"] = math.nan, math.nan
        out.append(row)
    return out


def _gain(s: dict | None) -> str:
    if s is None or s["median"] is None:
        return "n/a"
    ci = (f" [{fmt(s['lo'])}, {fmt(s['hi'])}]" if s["lo"] is not None and s["hi"] is not None
          else "")
    return f"{s['median']:+.2f}{ci}"


def _p(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v:.2g}" if v < 0.01 else f"{v:.3f}"


def _every_step(curves: list[dict]) -> list[str]:
    """Every step of every curve: Δ [CI], raw and Holm-corrected p."""
    lines = ["#### Every step: Δ to step 0, median [95 % CI], Wilcoxon p, Holm p", "",
             "| separator | target | β | metric | step | Δ | p | p (Holm) |",
             "|---|---|---|---|---|---|---|---|"]
    for c in sorted(curves, key=lambda c: (c["metric"], c["oracle"], c["separator"], c["mode"],
                                           c["target"])):
        name = c["separator"] + (" (oracle)" if c["oracle"] else "")
        for s in c["steps"]:
            if s["step"]:
                lines.append(f"| {name} | {c['target']} | {c['mode']} | {c['metric']} | "
                             f"{s['step']} | {_gain(s)} | {_p(s['p'])} | {_p(s['p_holm'])} |")
    return lines + [""]


def markdown(curves: list[dict], correlation: list[dict], title: str = "") -> str:
    """The study's tables as GitHub markdown."""
    lines = [f"### {title}", ""] if title else []
    for metric in sorted({c["metric"] for c in curves}):
        lines += [f"#### {metric}: step 0 (median over tracks) and Δ to step 0 (median [95 % CI]; "
                  "p: Wilcoxon, Holm over every step of the run)", ""]
        lines += ["| separator | target | β | step 0 | best step: Δ | p (Holm) | final: Δ | "
                  "p (Holm) | worst: Δ | n |", "|---|---|---|---|---|---|---|---|---|---|"]
        part = sorted((c for c in curves if c["metric"] == metric),
                      key=lambda c: (c["oracle"], c["mode"], c["target"], c["one_shot"] or 0))
        for c in part:
            name = c["separator"] + (" (oracle)" if c["oracle"] else "")
            best, final, worst = c["best"], c["final"], c["worst"]
            lines.append(
                f"| {name} | {c['target']} | {c['mode']} | {fmt(c['one_shot'])} | "
                f"{best['step'] if best else '-'}: {_gain(best)} | "
                f"{_p(best['p_holm'] if best else None)} | "
                f"{final['step'] if final else '-'}: {_gain(final)} | "
                f"{_p(final['p_holm'] if final else None)} | "
                f"{worst['step'] if worst else '-'}: {_gain(worst)} | {c['n']} |")
        lines.append("")
    lines += _every_step(curves)
    lines += ["#### Does a weaker separator gain more? Spearman ρ of one-shot quality against "
              "gain over the blind separators (one point each: medians over its targets)", "",
              "| β | metric | separators | ρ, best step | p | ρ, final step | p |",
              "|---|---|---|---|---|---|---|"]
    for r in correlation:
        lines.append(f"| {r['mode']} | {r['metric']} | {r['separators']} | "
                     f"{fmt(r['rho_best'])} | {_p(r['p_best'])} | {fmt(r['rho_final'])} | "
                     f"{_p(r['p_final'])} |")
    lines.append("")
    return "\n".join(lines)
