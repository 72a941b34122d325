"""What a report shows, prepared from the results store alone: plain JSON-able tables that the
HTML page draws (``html.py``) and tests check without a browser.

Nothing here separates or scores: rows, unit records and run records are read from the store.
A *variant* is one (separator configuration, strategy configuration, step), keyed by the
configuration hashes and labelled by what differs between configurations of one name (the
leaderboard's labels). Tables use pandas (already a dependency through museval) because every
section is a group-by over the tidy rows.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from ..datasets.excerpt import excerpt_seconds
from ..metrics import METRICS
from ..runs.rows import (
    Variants,
    distinguish_settings,
    load_rows,
    planned_tracks,
    select_runs,
    target_order,
    with_variant,
)
from ..runs.store import ResultsStore
from . import ranking
from .leaderboard import METRIC_LABELS, leaderboard, metric_label
from .steps import (
    HEADLINE,
    oracle_gain,
    strategy_curves,
    strength_gains,
    wiener_pairs,
)

ON_DEMAND = ("sir", "sar", "isr")


def _finite(v: float | None, digits: int = 3) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return round(float(v), digits)


# -- sections -----------------------------------------------------------------------------------
def header(store: ResultsStore, runs: list[dict], rows: pd.DataFrame, units: list[dict]) -> dict:
    configs = [json.loads(r["config"]) for r in runs]
    durations: dict[str, float] = {}
    for u in units:
        if u.get("track_seconds"):
            durations[f"{u['dataset']}/{u['track']}"] = float(u["track_seconds"])
    datasets = []
    for name, part in rows.groupby("dataset", sort=False):
        tracks = sorted(set(part["track"]))
        secs = [durations.get(f"{name}/{t}") for t in tracks]
        known = [s for s in secs if s]
        excerpts = sorted(set(part["excerpt"]))
        datasets.append({
            "name": name, "tracks": len(tracks),
            "subsets": sorted({s for s in part["subset"] if s}),
            "seconds_total": round(sum(known), 1) if known else None,
            "seconds_min": round(min(known), 1) if known else None,
            "seconds_max": round(max(known), 1) if known else None,
            "excerpt_seconds": sorted({round(excerpt_seconds(e), 2) for e in excerpts}),
        })
    metrics = []
    for name in dict.fromkeys(rows["metric"]):
        info = METRICS[name] if name in METRICS else None
        metrics.append({
            "name": name, "label": metric_label(name),
            "unit": info.unit if info else "",
            "direction": ("higher is better" if info.higher_is_better else "lower is better")
            if info else "",
            "definition": info.description if info else "not installed here",
            "per_track": ("median over BSS Eval frames" if info and info.scope == "bss_group"
                          else "whole excerpt"),
            "over_tracks": info.aggregate if info else "median",
        })
    return {
        "runs": [{"run_id": r["run_id"], "status": r["status"], "command": r["command"] or "",
                  "units_done": r.get("units_done"), "planned": r.get("planned"),
                  "created": r["created"], "updated": r["updated"],
                  "versions": json.loads(r["versions"]), "machine": json.loads(r["machine"])}
                 for r in runs],
        "store": str(store.path),
        "datasets": datasets,
        "excerpt": sorted({c.get("excerpt") for c in configs if c.get("excerpt") is not None}),
        "win": sorted({c.get("win", 1.0) for c in configs}),
        "gains": [c.get("gains") or {} for c in configs],
        "bsseval": sorted({c.get("bsseval", "numpy") for c in configs}),
        "metrics": metrics,
    }


def cost_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (separator, strategy): real-time factor (separation seconds over excerpt seconds, on
    the units computed rather than read from the estimate cache) and peak memory."""
    units = rows.drop_duplicates(["dataset", "subset", "track", "separator_hash",
                                  "strategy_hash"]).copy()
    units["audio_seconds"] = [excerpt_seconds(e) for e in units["excerpt"]]
    out = []
    for (sh, st), part in units.groupby(["separator_hash", "strategy_hash"]):
        timed = part[part["sep_seconds"].notna()]
        audio = timed["audio_seconds"].sum()
        rtf = float(timed["sep_seconds"].sum() / audio) if audio > 0 else math.nan
        peak = part["sep_peak_delta_mb"].max()
        out.append({"separator_hash": sh, "strategy_hash": st, "rtf": rtf,
                    "timed_units": int(len(timed)), "units": int(len(part)),
                    "peak_mb": float(peak) if pd.notna(peak) else math.nan})
    return pd.DataFrame(out)


def leaderboard_blocks(rows: pd.DataFrame, configs: dict, cost: pd.DataFrame,
                       planned: dict[str, int] | None = None) -> dict:
    metrics = [m for m in (*HEADLINE, *ON_DEMAND) if m in set(rows["metric"])]
    metrics += sorted(set(rows["metric"]) - set(metrics))
    columns = [(m, metric_label(m)) for m in metrics]
    entries = leaderboard(rows.to_dict("records"), configs, columns, planned)
    costs = {(c["separator_hash"], c["strategy_hash"]): c for c in cost.to_dict("records")}
    first = columns[0][0] if columns else None
    part = rows[rows["metric"] == first]
    fragile = part[part["few"]] if len(part) else part
    flagged = fragile.groupby(["separator_hash", "strategy_hash", "step", "target"])["track_id"] \
        .apply(lambda t: sorted(set(t))).to_dict() if len(fragile) else {}
    out: dict[str, list] = {"blind": [], "oracle": []}
    for e in entries:
        c = costs.get((e["separator_hash"], e["strategy_hash"]), {})
        row = {"separator": e["separator"], "strategy": e["strategy"],
               "step": e["step"] if e["multi_step"] else None, "target": e["target"],
               "tracks": e["tracks"], "rtf": _finite(c.get("rtf"), 4),
               "few_frames": flagged.get((e["separator_hash"], e["strategy_hash"], e["step"],
                                          e["target"]), []),
               "peak_mb": _finite(c.get("peak_mb"), 1)}
        for _m, label in columns:
            v = e.get(label, math.nan)
            row[label] = _finite(v)  # for sorting
            # shown as the terminal shows it: rounded once, from the unrounded aggregate
            row[label + " text"] = f"{v:.2f}" if math.isfinite(v) else "n/a"
            row[label + " n"] = e.get(label + " n", 0)
        out["oracle" if e["oracle"] else "blind"].append(row)
    return {"columns": [{"metric": m, "label": lab, "on_demand": m in ON_DEMAND,
                         "aggregate": METRICS[m].aggregate if m in METRICS else "median"}
                        for m, lab in columns], **out}


def points(rows: pd.DataFrame) -> list[dict]:
    """One point per (variant, target, metric, track) for the headline metrics: distributions
    and heatmaps draw these."""
    part = rows[rows["metric"].isin(HEADLINE)]
    return [{"v": v, "o": bool(o), "t": t, "m": metric_label(m), "k": k,
             "y": _finite(y), **({"f": 1} if flag else {})}
            for v, o, t, m, k, y, flag in zip(part["variant"], part["oracle"], part["target"],
                                              part["metric"], part["track_id"], part["value"],
                                              part["few"])]


FEW_FRAMES = 1 / 3  # a track's median over frames resting on fewer valid frames is fragile


def few_frames(rows: pd.DataFrame) -> list[bool]:
    """Per row, whether a framewise metric's value rests on fewer than a third of the track's
    frames (the others NaN: silent reference or estimate), e.g. demo 2.Lithium other."""
    out = []
    for detail in rows["detail"] if "detail" in rows else [None] * len(rows):
        flag = False
        if isinstance(detail, str) and '"valid_frames"' in detail:
            d = json.loads(detail)
            n, valid = d.get("frames") or 0, d.get("valid_frames")
            flag = bool(n) and valid is not None and valid < FEW_FRAMES * n
        out.append(flag)
    return out


def order_by_median(rows: pd.DataFrame) -> dict[str, list[str]]:
    """Per target, variants sorted by their cSDR median over tracks (best first)."""
    out = {}
    sdr = rows[rows["metric"] == ("sdr" if "sdr" in set(rows["metric"]) else rows["metric"].iloc[0])]
    for t, part in sdr.groupby("target"):
        med = part.groupby("variant")["value"].median().sort_values(ascending=False,
                                                                     na_position="last")
        out[t] = list(med.index)
    return out


def heat_domain(rows: pd.DataFrame, metric: str = "sdr") -> dict[str, list[float]]:
    """Per target, the 10th-90th percentile of the metric: the heatmap's colour range."""
    out = {}
    for t, part in rows[rows["metric"] == metric].groupby("target"):
        v = part["value"].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        if v.size:
            lo, hi = np.percentile(v, [10, 90])
            out[t] = [round(float(lo), 2), round(float(hi) if hi > lo else float(lo) + 1, 2)]
    return out


def dist_domain(rows: pd.DataFrame) -> dict[str, list[float]]:
    """Per target and headline metric, a robust axis range for the distributions: the 2nd to
    98th percentile widened by a tenth of the interquartile span each side, or the full range
    when nothing lies far out."""
    out = {}
    for (t, m), part in rows[rows["metric"].isin(HEADLINE)].groupby(["target", "metric"]):
        v = part["value"].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        if v.size < 5:
            continue
        lo, hi = np.percentile(v, [2, 98])
        q1, q3 = np.percentile(v, [25, 75])
        pad = max(0.1 * (q3 - q1), 0.5)
        lo, hi = lo - pad, hi + pad
        if v.min() >= lo and v.max() <= hi:
            continue  # nothing far out: the plot's own range
        out[f"{t}/{metric_label(m)}"] = [round(float(lo), 2), round(float(hi), 2)]
    return out


def frames(rows: pd.DataFrame, metric: str = "sdr") -> dict[str, Any]:
    """Per track and target, every variant's per-frame values, NaN and quiet frames marked."""
    part = rows[(rows["metric"] == metric) & rows["detail"].notna()]
    by_track: dict[str, dict[str, list]] = {}
    hop = None
    for track, target, variant, detail, oracle in zip(part["track_id"], part["target"],
                                                      part["variant"], part["detail"],
                                                      part["oracle"]):
        d = json.loads(detail)
        values = d.get("frame_values")
        if values is None:
            continue
        hop = hop or d.get("hop_seconds")
        by_track.setdefault(track, {}).setdefault(target, []).append(
            {"v": variant, "o": bool(oracle),
             "y": [None if x is None else round(x, 2) for x in values],
             "q": d.get("quiet_frame_index", [])})
    return {"tracks": by_track, "hop": hop or 1.0, "metric": metric_label(metric)}


def quality_cost(rows: pd.DataFrame, cost: pd.DataFrame, variants: Variants) -> list[dict]:
    """One point per separator pipeline: the mean over targets of its per-target aggregate
    (cSDR, else uSDR) against its real-time factor (last step for strategies with steps)."""
    metric = "sdr" if "sdr" in set(rows["metric"]) else ("usdr" if "usdr" in set(rows["metric"])
                                                         else None)
    if metric is None:
        return []
    how = METRICS[metric].aggregate if metric in METRICS else "median"
    costs = {(c["separator_hash"], c["strategy_hash"]): c for c in cost.to_dict("records")}
    out = []
    part = rows[(rows["metric"] == metric) & (rows["target"] != "accompaniment")]
    for (sh, st), g in part.groupby(["separator_hash", "strategy_hash"]):
        g = g[g["step"] == g["step"].max()]
        per_target = g.groupby("target")["value"].agg(how)
        c = costs.get((sh, st), {})
        rtf = c.get("rtf", math.nan)
        if not per_target.notna().any() or not (rtf and math.isfinite(rtf) and rtf > 0):
            continue
        out.append({"pipeline": variants.pipeline(sh, st), "oracle": bool(g["oracle"].iloc[0]),
                    "rtf": _finite(rtf, 5), "y": _finite(float(per_target.mean())),
                    "metric": metric_label(metric), "targets": len(per_target)})
    return out


REFERENCE_TARGETS = ("vocals", "drums", "bass", "other", "average", "accompaniment")


def published_reference(rows: pd.DataFrame) -> dict:
    """The shipped MUSDB18 reference rows (cSDR, test set named in each row), and beside them
    this run's cSDR per plain separator (median over its tracks; average over the four
    MUSDB18 targets it has), labelled with the run's datasets."""
    with resources.files(__package__).joinpath("data/musdb18-published.csv").open(
            encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    plain = rows[(rows["metric"] == "sdr") & (rows["strategy_hash"] == "")]
    run = []
    for variant, g in plain.groupby("variant"):
        med = g.groupby("target")["value"].median()
        four = [med[t] for t in ("vocals", "drums", "bass", "other") if t in med]
        entry = {"system": variant, "oracle": bool(g["oracle"].iloc[0])}
        for t in REFERENCE_TARGETS:
            v = float(np.mean(four)) if t == "average" and len(four) == 4 else med.get(t)
            entry[t] = _finite(v, 2) if v is not None else None
        run.append(entry)
    return {"rows": table, "targets": list(REFERENCE_TARGETS), "run": run,
            "run_datasets": sorted(set(rows["dataset"]))}


_VARYING = re.compile(r"\S*/\S+|\d+(?:\.\d+)?")  # paths and numbers: what repeats vary by


def collapse(notices: list[str]) -> list[str]:
    """Notices that differ only by a path or a number (one per track: "imported from ...")
    as one line with a count, in first-seen order."""
    groups: dict[str, list[str]] = {}
    for n in notices:
        groups.setdefault(_VARYING.sub("…", n), []).append(n)
    return [g[0] if len(g) == 1 else f"{g[0]} (and {len(g) - 1} more like it)"
            for g in groups.values()]


def notices(runs: list[dict], rows: pd.DataFrame, units: list[dict]) -> dict:
    run_notices: list[str] = []
    for r in runs:
        for n in json.loads(r.get("notices") or "[]"):
            if n not in run_notices:
                run_notices.append(n)
    unit_notices: list[str] = []
    conversions: dict[str, set] = {}
    for u in units:
        for n in json.loads(u["notices"]):
            if n not in unit_notices:
                unit_notices.append(n)
        for c in json.loads(u["conversions"]):
            conversions.setdefault(c, set()).add(u["separator"])
    nan = rows[rows["value"].isna() | ~np.isfinite(rows["value"].fillna(0))]
    nans = []
    for (variant, target, metric, reason), g in nan.groupby(
            ["variant", "target", "metric", nan["nan_reason"].fillna("no reason recorded")]):
        nans.append({"variant": variant, "target": target, "metric": metric_label(metric),
                     "reason": reason, "tracks": sorted(set(g["track_id"]))})
    return {"run": collapse(run_notices), "tracks": collapse(unit_notices),
            "conversions": [{"conversion": c, "separators": sorted(s)}
                            for c, s in sorted(conversions.items())],
            "nan": nans,
            "warnings": [n for n in run_notices if n.startswith("warning")]}


def step_metrics(rows: pd.DataFrame) -> list[str]:
    """Every metric the rows hold, the headline ones first (the step panels show them all:
    SI-SDR is the seed paper's metric)."""
    present = list(dict.fromkeys(rows["metric"]))
    return [m for m in HEADLINE if m in present] + [m for m in present if m not in HEADLINE]


def build(store: ResultsStore, run_ids: Sequence[str] | None = None,
          title: str | None = None) -> dict:
    """Everything a report page shows, as JSON-able data."""
    runs = select_runs(store, run_ids)
    rows = load_rows(store, runs)
    configs = store.configs([r["run_id"] for r in runs])
    rows, configs = distinguish_settings(rows, runs, configs)
    variants = Variants(rows, configs)
    rows = with_variant(rows, variants)
    # each detail parsed once, for the metrics points and the leaderboard's first column read
    shown = rows["metric"].isin(HEADLINE)
    shown = shown if shown.any() else pd.Series(True, index=rows.index)
    rows["few"] = False
    rows.loc[shown, "few"] = few_frames(rows[shown])
    units = [u for r in runs for u in store.unit_records(r["run_id"])]
    cost = cost_table(rows)
    targets = target_order(rows["target"])
    return {
        "title": title or f"demixbench run {', '.join(r['run_id'] for r in runs)}",
        "header": header(store, runs, rows, units),
        "targets": targets,
        "leaderboard": leaderboard_blocks(rows, configs, cost, planned_tracks(runs)),
        "points": points(rows),
        "metrics_shown": [metric_label(m) for m in HEADLINE if m in set(rows["metric"])],
        "order": order_by_median(rows),
        "heat_domain": heat_domain(rows),
        "dist_domain": dist_domain(rows),
        "frames": frames(rows),
        "strategies": (curves := strategy_curves(rows, variants, metrics=step_metrics(rows),
                                                 configs=configs)),
        "strength": strength_gains(curves),
        "oracle_gain": oracle_gain(rows, variants, configs),
        "wiener": wiener_pairs(rows, variants),
        "quality_cost": quality_cost(rows, cost, variants),
        "reference": published_reference(rows) if "sdr" in set(rows["metric"]) else None,
        "notices": notices(runs, rows, units),
        "ranking": ranking.report_section(rows, variants),
        "variants": sorted(set(rows["variant"])),
        "separators": sorted(set(rows["separator"])),
        "oracle_variants": sorted(set(rows.loc[rows["oracle"], "variant"])),
        "labels": METRIC_LABELS,
    }
