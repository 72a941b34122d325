"""The text leaderboard printed after a run: per separator configuration, strategy
configuration, step and target, each metric aggregated over tracks as the metric declares
(median for cSDR and SI-SDR, mean for uSDR). Reads result rows (and the runs' configurations,
for labels) only.

Rows are grouped by the separator's and the strategy's configuration hashes, never by name:
two configurations of one separator (or of one strategy) are two entries, labelled by what
differs between them (``progressive[wiener=true]``), or by a short hash when the configurations
are unknown.
"""

from __future__ import annotations

import math
import shutil
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .. import SUITE_STEMS
from ..metrics import METRICS
from ..runs.rows import variant_labels

TARGET_ORDER = SUITE_STEMS
COLUMNS = (("sdr", "cSDR"), ("usdr", "uSDR"), ("si_sdr", "SI-SDR"))
METRIC_LABELS = {"sdr": "cSDR", "usdr": "uSDR", "si_sdr": "SI-SDR", "sir": "SIR", "sar": "SAR",
                 "isr": "ISR"}


def columns_for(metrics) -> tuple[tuple[str, str], ...]:
    """The leaderboard's columns for a run's metrics: the headline three where measured, then
    every other metric the run computed except BSS Eval's SIR/SAR/ISR (the report shows those
    on demand), each by its label."""
    metrics = list(dict.fromkeys(metrics))
    head = [c for c in COLUMNS if c[0] in metrics]
    rest = [(m, metric_label(m)) for m in metrics
            if m not in dict(COLUMNS) and m not in ("sir", "sar", "isr")]
    return tuple(head + rest) or COLUMNS


def metric_label(name: str) -> str:
    """How a metric is titled in tables and plots (a plugin metric by its own name)."""
    return METRIC_LABELS.get(name, name)


def _agg(values: list[float], how: str) -> tuple[float, int]:
    v = np.array([x for x in values if not math.isnan(x)], dtype=float)
    if v.size == 0:
        return math.nan, 0
    return (float(np.median(v)) if how == "median" else float(np.mean(v))), int(v.size)


def leaderboard(rows: Iterable[dict], configs: Mapping[str, Mapping] | None = None,
                columns: Sequence[tuple[str, str]] = COLUMNS,
                planned: Mapping[str, int] | None = None) -> list[dict]:
    """Aggregate rows into one entry per (separator config, strategy config, step, target).

    ``configs`` maps configuration hashes to configurations (the runs' ``separator_configs``
    and ``strategy_configs``); it only makes labels of variants more readable. ``columns``:
    the (metric, column title) pairs aggregated. ``planned``: run id -> tracks the run planned
    (:func:`demixbench.runs.rows.planned_tracks`), the total an entry's tracks are counted of.
    """
    planned = planned or {}
    configs = configs or {}
    groups: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    tracks: dict[tuple, set] = defaultdict(set)
    totals: dict[tuple, int] = {}
    sep_names: dict[str, str] = {}
    strat_names: dict[str, str] = {}
    for r in rows:
        key = (r["separator_hash"], bool(r["oracle"]), r["strategy_hash"], int(r["step"]),
               r["target"])
        sep_names[r["separator_hash"]] = r["separator"]
        if r["strategy_hash"]:
            strat_names[r["strategy_hash"]] = r["strategy"]
        groups[key][r["metric"]].append(float(r["value"]))
        tracks[key].add((r["dataset"], r["subset"], r["track"]))
        totals[key] = max(totals.get(key, 0), planned.get(r.get("run_id"), 0))
    sep_labels = variant_labels(sep_names, configs)
    strat_labels = variant_labels(strat_names, configs)
    multi_step = {(k[0], k[2]) for k in groups if k[3] > 0}
    out = []
    for key, by_metric in groups.items():
        sep_hash, oracle, strat_hash, step, target = key
        entry = {"separator": sep_labels[sep_hash], "separator_hash": sep_hash, "oracle": oracle,
                 "strategy": strat_labels.get(strat_hash, "none"), "strategy_hash": strat_hash,
                 "step": step, "multi_step": (sep_hash, strat_hash) in multi_step,
                 "target": target, "tracks": max(len(tracks[key]), totals.get(key, 0))}
        for metric, label in columns:
            if metric in by_metric:
                how = METRICS[metric].aggregate if metric in METRICS else "median"
                entry[label], entry[f"{label} n"] = _agg(by_metric[metric], how)
        out.append(entry)
    order = {t: i for i, t in enumerate(TARGET_ORDER)}
    out.sort(key=lambda e: (e["oracle"], e["separator"], e["strategy"] != "none", e["strategy"],
                            e["step"], order.get(e["target"], 99), e["target"]))
    return out


def format_leaderboard(entries: list[dict], width: int | None = None) -> str:
    """A table whose columns fit their longest cell; oracles are marked and listed after blind
    separators. Where the metric columns do not fit in ``width`` characters (the terminal's,
    80 when it is not a terminal), they are split over several tables, each with the
    separator, strategy and target columns."""
    labels = list(dict.fromkeys(k for e in entries for k in e if f"{k} n" in e))
    if width is None:
        width = shutil.get_terminal_size((80, 24)).columns
    cell = {h: max(9, len(h) + 2) for h in labels}
    names = [_name_of(e) for e in entries]
    fixed = (max([len("separator")] + [len(n[0]) for n in names]) + 2
             + max([len("strategy")] + [len(n[1]) for n in names]) + 2
             + max([len("target")] + [len(e["target"]) for e in entries]) + 2 + 8)
    parts: list[list[str]] = [[]]
    for label in labels:
        if parts[-1] and fixed + sum(cell[h] for h in parts[-1]) + cell[label] > width:
            parts.append([])
        parts[-1].append(label)
    tables = [_table(entries, names, part, cell) for part in parts]
    footer = ("cSDR: BSS Eval v4 SDR, median over 1 s frames then over tracks; uSDR: whole-"
              "excerpt SDR (MDX), mean over tracks; SI-SDR: median over tracks. tracks: scored/total "
              "for the first column; n/a: every track NaN (nan_reason in `demixbench results`).")
    return "\n\n".join(tables) + "\n\n" + footer


def _name_of(e: dict) -> tuple[str, str]:
    sep = e["separator"] + (" (oracle)" if e["oracle"] else "")
    strat = "" if e["strategy"] == "none" else e["strategy"] + (
        f" @{e['step']}" if e["multi_step"] else "")
    return sep, strat


def _table(entries: list[dict], names: list[tuple[str, str]], labels: list[str],
           width: dict[str, int]) -> str:
    """One table of the leaderboard: the given metric columns."""
    w_sep = max([len("separator")] + [len(n[0]) for n in names]) + 2
    w_strat = max([len("strategy")] + [len(n[1]) for n in names]) + 2
    w_target = max([len("target")] + [len(e["target"]) for e in entries]) + 2
    head = (f"{'separator':<{w_sep}}{'strategy':<{w_strat}}{'target':<{w_target}}"
            + "".join(f"{h:>{width[h]}}" for h in labels) + f"{'tracks':>8}")
    lines = [head, "-" * len(head)]
    prev = None
    for e, (sep, strat) in zip(entries, names):
        if prev is not None and prev != (sep, strat):
            lines.append("")
        cells = []
        for label in labels:
            v = e.get(label, math.nan)
            cells.append(f"{'n/a':>{width[label]}}" if math.isnan(v)
                         else f"{v:>{width[label]}.2f}")
        first = e.get(f"{labels[0]} n", e["tracks"]) if labels else e["tracks"]
        counts = f"{first}/{e['tracks']}"
        shown = (sep, strat) if (sep, strat) != prev else ("", "")
        lines.append(f"{shown[0]:<{w_sep}}{shown[1]:<{w_strat}}{e['target']:<{w_target}}"
                     f"{''.join(cells)}{counts:>8}")
        prev = (sep, strat)
    return "\n".join(lines)


def text_table(headers: list[str], rows: list[list[str]], indent: str = "  ") -> str:
    """Columns as wide as their longest cell; the last column is left unpadded."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = []
    for cells in [headers, *rows]:
        head = "  ".join(c.ljust(w) for c, w in zip(cells[:-1], widths[:-1]))
        lines.append(f"{indent}{head}  {cells[-1]}".rstrip())
    return "\n".join(lines)
