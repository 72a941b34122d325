"""The text leaderboard printed after a run: per separator (and strategy step) and target,
median cSDR, mean uSDR and median SI-SDR over tracks. Reads result rows only."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from .. import STEMS

TARGET_ORDER = (*STEMS, "accompaniment")
COLUMNS = (("sdr", "median", "cSDR"), ("usdr", "mean", "uSDR"), ("si_sdr", "median", "SI-SDR"))


def _agg(values: list[float], how: str) -> tuple[float, int]:
    v = np.array([x for x in values if not math.isnan(x)], dtype=float)
    if v.size == 0:
        return math.nan, 0
    return (float(np.median(v)) if how == "median" else float(np.mean(v))), int(v.size)


def leaderboard(rows: Iterable[dict]) -> list[dict]:
    """Aggregate rows into one entry per (separator, oracle, strategy, step, target)."""
    groups: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    tracks: dict[tuple, set] = defaultdict(set)
    for r in rows:
        key = (r["separator"], bool(r["oracle"]), r["strategy"], int(r["step"]), r["target"])
        groups[key][r["metric"]].append(float(r["value"]))
        tracks[key].add((r["dataset"], r["track"]))
    out = []
    for key, by_metric in groups.items():
        sep, oracle, strategy, step, target = key
        entry = {"separator": sep, "oracle": oracle, "strategy": strategy, "step": step,
                 "target": target, "tracks": len(tracks[key])}
        for metric, how, label in COLUMNS:
            if metric in by_metric:
                entry[label], entry[f"{label} n"] = _agg(by_metric[metric], how)
        out.append(entry)
    order = {t: i for i, t in enumerate(TARGET_ORDER)}
    out.sort(key=lambda e: (e["oracle"], e["separator"], e["strategy"], e["step"],
                            order.get(e["target"], 99), e["target"]))
    return out


def format_leaderboard(entries: list[dict]) -> str:
    """A fixed-width table; oracles are marked and listed after blind separators."""
    labels = [label for _, _, label in COLUMNS if any(label in e for e in entries)]
    head = f"{'separator':<30}{'target':<15}" + "".join(f"{h:>9}" for h in labels) + f"{'tracks':>8}"
    lines = [head, "-" * len(head)]
    prev = None
    multi_step = {(e["separator"], e["strategy"]) for e in entries if e["step"] > 0}
    for e in entries:
        name = e["separator"] + (" (oracle)" if e["oracle"] else "")
        if e["strategy"] != "none":  # one-step strategies (wiener) need no step number
            step = f"@{e['step']}" if (e["separator"], e["strategy"]) in multi_step else ""
            name += f" +{e['strategy']}{step}"
        if prev is not None and prev != name:
            lines.append("")
        cells = []
        for label in labels:
            v = e.get(label, math.nan)
            cells.append(f"{'n/a':>9}" if math.isnan(v) else f"{v:>9.2f}")
        first = e.get(f"{labels[0]} n", e["tracks"]) if labels else e["tracks"]
        counts = f"{first}/{e['tracks']}"
        lines.append(f"{name if name != prev else '':<30}{e['target']:<15}{''.join(cells)}"
                     f"{counts:>8}")
        prev = name
    lines.append("")
    lines.append("cSDR: BSS Eval v4 SDR, median over 1 s frames then over tracks; uSDR: whole-"
                 "excerpt SDR (MDX), mean over tracks; SI-SDR: median over tracks. tracks: scored/total "
                 "for the first column; n/a: every track NaN (nan_reason in `demixbench results`).")
    return "\n".join(lines)
