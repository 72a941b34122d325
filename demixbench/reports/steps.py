"""The report's strategy sections, from the tidy rows: per-step curves with paired statistics
(Holm over every step comparison of a family), one-shot quality against progressive gain, the
oracle-gain experiment and the Wiener with/without pairs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from ..metrics import METRICS
from ..runs.rows import Variants, song_ids, target_order
from .leaderboard import metric_label
from .stats import compare_paired, fill_holm

HEADLINE = ("sdr", "usdr", "si_sdr")  # distributions and default leaderboard columns


def _finite(v: float | None, digits: int = 3) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return round(float(v), digits)


def _unrounded(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def small_sample_note(n: int) -> str | None:
    """What ``n`` pairs cannot show: the smallest two-sided Wilcoxon p of n pairs is 2 / 2^n."""
    if n and 2.0 / 2 ** n >= 0.05:
        return (f"{n} songs: a two-sided Wilcoxon test over {n} pairs cannot reach p < 0.05 "
                f"(its smallest p is {2.0 / 2 ** n:.3g})")
    return None


def song_wide(g: pd.DataFrame) -> pd.DataFrame:
    """songs x steps of one curve: excerpt pieces of a song averaged first (the song is the
    independent unit of the test)."""
    return g.assign(song=song_ids(g)).pivot_table(index="song", columns="step", values="value",
                                                  aggfunc="mean", dropna=False)


def step_comparisons(wide: pd.DataFrame, higher: bool = True) -> tuple[list[dict], int | None]:
    """Every step of a tracks × steps table against step 0, paired over tracks (median
    difference, bootstrap 95 % CI, Wilcoxon p; ``p_holm`` left for the caller's family), and the
    best step: highest median difference, ties (and no gain at all) to the earliest step,
    step 0 included."""
    steps = []
    for step in wide.columns:
        r = compare_paired(wide[0].to_numpy(), wide[step].to_numpy(), higher)
        steps.append({"step": int(step), "n": r.n, "median": _finite(r.median_diff),
                      "lo": _finite(r.ci_low), "hi": _finite(r.ci_high),
                      "p": _unrounded(r.p), "p_holm": None,  # Holm needs the exact p
                      "value": _finite(r.median_b), "verdict": r.verdict})
    valid = [s for s in steps if s["median"] is not None]
    best = max(valid, key=lambda s: (s["median"], -s["step"]))["step"] if valid else None
    for s in steps:
        s["best"] = s["step"] == best
    return steps, best


def strategy_curves(rows: pd.DataFrame, variants: Variants,
                    metrics: Sequence[str] = ("sdr", "usdr"),
                    configs: dict | None = None) -> list[dict]:
    """For every (separator, strategy with steps, target, metric): per step, the paired
    difference to step 0 over tracks (median, bootstrap 95 % CI, Wilcoxon p), best step marked.

    A strategy that refines one target (progressive inference keeps step 0's other stems) gets
    that target's curve only: the others are flat zeros by construction, and as tests they
    would only dilute the Holm correction."""
    configs = configs or {}
    out = []
    pairs = pd.MultiIndex.from_arrays([rows["separator_hash"], rows["strategy_hash"]])
    stepped = rows[pairs.isin(list(variants.multi_step))] if variants.multi_step else rows[:0]
    for metric in metrics:
        if metric not in set(stepped["metric"]):
            continue
        info = METRICS[metric] if metric in METRICS else None
        higher = info.higher_is_better if info else True
        part = stepped[stepped["metric"] == metric]
        for (sh, st, target), g in part.groupby(["separator_hash", "strategy_hash", "target"]):
            own = configs.get(st, {}).get("target")
            if own is not None and target != own and configs[st].get("others") == "step0":
                continue
            wide = song_wide(g)
            if 0 not in wide.columns:
                continue
            steps, best = step_comparisons(wide, higher)
            out.append({"panel": f"{variants.pipeline(sh, st)} · {target}",
                        "pipeline": variants.pipeline(sh, st), "target": target,
                        "metric": metric_label(metric), "steps": steps, "best": best,
                        "strategy": g["strategy"].iloc[0], "oracle": bool(g["oracle"].any()),
                        "note": small_sample_note(steps[0]["n"])})
    holm_over_steps(out, digits=4)
    return out


def holm_over_steps(curves: list[dict], digits: int | None = None) -> None:
    """Holm over every step compared with step 0 in ``curves``, one family per metric and
    kind (blind curves and oracle curves are never one family), on the unrounded p;
    ``p_holm`` filled in place, then ``p`` and ``p_holm`` rounded to ``digits`` when given."""
    for key in {(c["metric"], bool(c.get("oracle"))) for c in curves}:
        family = [st for c in curves if (c["metric"], bool(c.get("oracle"))) == key
                  for st in c["steps"] if st["step"]]
        fill_holm(family)
        if digits is not None:
            for st in family:
                st["p_holm"] = _finite(st["p_holm"], digits)
    if digits is not None:
        for c in curves:
            for st in c["steps"]:
                st["p"] = _finite(st["p"], digits) if st["p"] is not None else None


def best_final_worst(steps: list[dict]) -> tuple[dict, dict, dict] | None:
    """Of the steps after step 0 with a median: the best (highest median, earliest on ties),
    the final and the worst (lowest median, earliest on ties); None when there is none."""
    later = [s for s in steps if s["step"] > 0 and s["median"] is not None]
    if not later:
        return None
    return (max(later, key=lambda s: (s["median"], -s["step"])),
            max(later, key=lambda s: s["step"]),
            min(later, key=lambda s: (s["median"], s["step"])))


def strength_gains(curves: list[dict]) -> list[dict]:
    """The seed paper's open question as one table: per (pipeline, target, metric) of a
    progressive strategy, the one-shot quality (median over tracks of step 0) against the
    paired gain at the best step and at the final step (median, bootstrap 95 % CI, Wilcoxon p
    and its Holm correction over every step of the report), and the worst step (whether the
    strategy ever falls below one-shot, and by how much). Blind pipelines only: an oracle is an
    upper bound, not a rung of the ladder."""
    out = []
    for c in curves:
        if not c["strategy"].startswith("progressive") or c.get("oracle"):
            continue
        steps = {s["step"]: s for s in c["steps"]}
        picked = best_final_worst(c["steps"])
        if 0 not in steps or picked is None:
            continue
        best, final, worst = picked
        out.append({"pipeline": c["pipeline"], "target": c["target"], "metric": c["metric"],
                    "strategy": c["strategy"], "one_shot": steps[0]["value"], "n": best["n"],
                    "best_step": best["step"], "gain_best": best["median"],
                    "lo_best": best["lo"], "hi_best": best["hi"], "p_best": best["p"],
                    "p_holm_best": best.get("p_holm"), "final_step": final["step"],
                    "gain_final": final["median"], "lo_final": final["lo"],
                    "hi_final": final["hi"], "p_final": final["p"],
                    "p_holm_final": final.get("p_holm"), "worst_step": worst["step"],
                    "gain_worst": worst["median"], "lo_worst": worst["lo"],
                    "hi_worst": worst["hi"], "p_holm_worst": worst.get("p_holm")})
    return out


def oracle_gain(rows: pd.DataFrame, variants: Variants, configs: dict) -> list[dict]:
    """The seed paper's Fig. 2: per oracle-gain pipeline, median cSDR of every stem per gain."""
    part = rows[(rows["strategy"] == "oracle-gain") & (rows["metric"] == "sdr")]
    out = []
    for (sh, st), g in part.groupby(["separator_hash", "strategy_hash"]):
        config = configs.get(st, {})
        gains, boosted = config.get("gains"), config.get("target")
        med = g.groupby(["step", "target"])["value"].median()
        for (step, target), v in med.items():
            gain = gains[step] if gains and step < len(gains) else None
            out.append({"pipeline": variants.pipeline(sh, st), "step": int(step),
                        "gain": gain if gain is not None else int(step), "target": target,
                        "boosted": target == boosted, "y": _finite(v)})
    return out


def wiener_pairs(rows: pd.DataFrame, variants: Variants) -> list[dict]:
    """Wiener post-filter on/off as a paired difference, for separators run both ways."""
    out: list = []
    plain = rows[rows["strategy_hash"] == ""]
    filt = rows[rows["strategy"] == "wiener"]
    for (sh, st), g in filt.groupby(["separator_hash", "strategy_hash"]):
        base = plain[plain["separator_hash"] == sh]
        if base.empty:
            continue
        for metric in [m for m in HEADLINE if m in set(g["metric"])]:
            info = METRICS[metric] if metric in METRICS else None
            for target in target_order(g["target"]):
                a = base[(base["metric"] == metric) & (base["target"] == target)].set_index(
                    "track_id")["value"]
                b = g[(g["metric"] == metric) & (g["target"] == target)].set_index(
                    "track_id")["value"]
                common = a.index.intersection(b.index)
                r = compare_paired(a[common].to_numpy(), b[common].to_numpy(),
                                   info.higher_is_better if info else True)
                out.append({"separator": variants.sep_labels[sh],
                            "wiener": variants.strat_labels[st], "target": target,
                            "metric": metric_label(metric), **{k: (_finite(v, 4) if isinstance(
                                v, float) else v) for k, v in r.as_dict().items()}})
    fill_holm(out)
    for r in out:
        r["p_holm"] = _finite(r["p_holm"], 4)
    return out
