"""``demixbench compare RUN_A RUN_B``: two runs paired track by track.

Rows are paired on (subset, track, excerpt, separator, strategy, step, target, metric), where
separator and strategy are the names as labelled within each run (a name with one
configuration in a run is its plain name). Per (separator, strategy, step, target, metric) the
table gives both medians, the median paired difference (B - A, oriented so that > 0 is better)
with its bootstrap 95 % CI, the Wilcoxon p and the Holm-corrected p over the table, the number
of pairs and a verdict (:mod:`demixbench.reports.stats`). Runs whose metric definitions differ
(BSS Eval window, uSDR's delta, ...) are refused: their numbers are not the same quantity.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import ReportError
from ..metrics import METRICS
from ..runs.rows import Variants, flat_config, load_rows, select_runs
from ..runs.store import ResultsStore
from .leaderboard import metric_label, text_table
from .stats import compare_paired, fill_holm, paired_cells

KEY = ["subset", "track", "excerpt", "pipeline", "step", "target", "metric"]


@dataclass
class RunSide:
    store: Path
    run: dict
    rows: pd.DataFrame
    configs: dict

    @property
    def run_id(self) -> str:
        return self.run["run_id"]

    @property
    def config(self) -> dict:
        return json.loads(self.run["config"])


@dataclass
class Comparison:
    a: RunSide
    b: RunSide
    table: list[dict]
    diffs: list[dict]  # per track, for the strip plots
    config_changes: dict[str, list[str]]
    notes: list[str] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)


def _side(store_path: str | Path, run_id: str) -> RunSide:
    with ResultsStore(store_path, read_only=True) as store:
        run = select_runs(store, [run_id])[0]
        rows = load_rows(store, [run])
        configs = store.configs([run_id])
    variants = Variants(rows, configs)
    rows = rows.copy()
    rows["pipeline"] = [variants.pipeline(a, b) for a, b in zip(rows["separator_hash"],
                                                                 rows["strategy_hash"])]
    return RunSide(Path(store_path), run, rows, configs)


def definition_problems(a: RunSide, b: RunSide, metrics: Sequence[str]) -> list[str]:
    """Why the two runs' numbers are not the same quantity (empty: comparable)."""
    ca, cb = a.config, b.config
    problems = []
    if ca.get("win", 1.0) != cb.get("win", 1.0):
        problems.append(f"BSS Eval window and hop: {ca.get('win', 1.0)} s in {a.run_id}, "
                        f"{cb.get('win', 1.0)} s in {b.run_id}")
    da, db = ca.get("metric_definitions") or {}, cb.get("metric_definitions") or {}
    for m in metrics:
        if m in da and m in db and da[m] != db[m]:
            changed = sorted(k for k in set(da[m]) | set(db[m]) if da[m].get(k) != db[m].get(k))
            problems.append(f"{metric_label(m)}: " + ", ".join(
                f"{k} {da[m].get(k)} in {a.run_id}, {db[m].get(k)} in {b.run_id}" for k in changed))
    return problems


def config_changes(a: RunSide, b: RunSide) -> dict[str, list[str]]:
    """Per separator name in both runs, the configuration keys that differ (A -> B)."""
    out: dict[str, list[str]] = {}
    names_a = dict(zip(a.rows["separator_hash"], a.rows["separator"]))
    names_b = dict(zip(b.rows["separator_hash"], b.rows["separator"]))
    for name in sorted(set(names_a.values()) & set(names_b.values())):
        ha = [h for h, n in names_a.items() if n == name]
        hb = [h for h, n in names_b.items() if n == name]
        if len(ha) != 1 or len(hb) != 1 or ha == hb:
            continue
        fa, fb = flat_config(a.configs.get(ha[0], {})), flat_config(b.configs.get(hb[0], {}))
        changes = [f"{k}: {fa.get(k, '(absent)')!r} -> {fb.get(k, '(absent)')!r}"
                   for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
        out[name] = changes or [f"configuration hash {ha[0]} -> {hb[0]}"]
    return out


def _metric_names(metrics: Sequence[str] | None) -> list[str]:
    names = list(metrics or ("sdr", "usdr", "si_sdr"))
    by_label = {metric_label(m).lower(): m for m in METRICS}
    out = []
    for m in names:
        key = m.strip().lower()
        name = key if key in METRICS else by_label.get(key)
        if name is None:
            raise ReportError(f"--metric {m}: unknown metric; choose from {', '.join(METRICS)}")
        out.append(name)
    return out


def compare(store_a: str | Path, run_a: str, store_b: str | Path | None, run_b: str,
            metrics: Sequence[str] | None = None) -> Comparison:
    metrics = _metric_names(metrics)
    a = _side(store_a, run_a)
    b = _side(store_b or store_a, run_b)
    problems = definition_problems(a, b, metrics)
    if problems:
        raise ReportError("runs measure different quantities, so they are not compared: "
                          + "; ".join(problems))
    notes = []
    for side in (a, b):
        if "metric_definitions" not in side.config:
            notes.append(f"run {side.run_id} predates recorded metric definitions; its metrics "
                         "are taken to be defined as in this version")
    ds_a, ds_b = a.config.get("datasets", {}), b.config.get("datasets", {})
    if ds_a != ds_b:
        notes.append("the runs' datasets differ (" + ", ".join(sorted(ds_a)) + " vs "
                     + ", ".join(sorted(ds_b)) + ", or their tracks' contents): only tracks "
                     "scored in both, on the same excerpt, are paired")
    ra = a.rows[a.rows["metric"].isin(metrics)]
    rb = b.rows[b.rows["metric"].isin(metrics)]
    merged = ra[KEY + ["value"]].merge(rb[KEY + ["value"]], on=KEY, suffixes=("_a", "_b"))
    pipes_a, pipes_b = set(ra["pipeline"]), set(rb["pipeline"])
    table, diffs = [], []
    for (pipe, step, target, metric), g in merged.groupby(["pipeline", "step", "target", "metric"],
                                                          sort=False):
        info = METRICS[metric] if metric in METRICS else None
        higher = info.higher_is_better if info else True
        r = compare_paired(g["value_a"].to_numpy(), g["value_b"].to_numpy(), higher)
        multi = (ra[(ra["pipeline"] == pipe)]["step"].max() > 0)
        label = pipe + (f" @{step}" if multi else "")
        table.append({"separator": label, "target": target, "metric": metric,
                      "metric_label": metric_label(metric), **r.as_dict()})
        sign = 1.0 if higher else -1.0
        for track, va, vb in zip(g["track"], g["value_a"], g["value_b"]):
            d = sign * (vb - va)
            if math.isfinite(d):
                diffs.append({"row": f"{label} · {target}", "metric": metric_label(metric),
                              "track": track, "d": round(float(d), 3), "verdict": r.verdict})
    fill_holm(table)
    if not table:
        raise ReportError(f"runs {a.run_id} and {b.run_id} share no (track, excerpt, separator, "
                          "target) to pair: compare runs of the same dataset and separators")
    return Comparison(a, b, table, diffs, config_changes(a, b), notes,
                      sorted(pipes_a - pipes_b), sorted(pipes_b - pipes_a))


def parse_fail_on(text: str | None) -> dict[str, float]:
    """``"sdr:0.5,usdr:1"`` -> ``{"sdr": 0.5, "usdr": 1.0}``."""
    out: dict[str, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition(":")
        try:
            db = float(value)
        except ValueError:
            db = math.nan
        if not sep or not math.isfinite(db) or db < 0:
            raise ReportError(f"--fail-on {text!r}: expected METRIC:DB pairs with DB >= 0, e.g. "
                              "sdr:0.5")
        out[_metric_names([name])[0]] = db
    return out


def failures(comparison: Comparison, fail_on: Mapping[str, float]) -> list[dict]:
    """Rows whose median paired difference drops by more than the threshold and whose
    bootstrap 95 % CI lies entirely below zero."""
    return [r for r in comparison.table if r["metric"] in fail_on
            and r["median_diff"] < -fail_on[r["metric"]] and r["ci_high"] < 0]


def format_table(c: Comparison) -> str:
    lines = [f"A: run {c.a.run_id} ({c.a.store})", f"B: run {c.b.run_id} ({c.b.store})"]
    for name, changes in c.config_changes.items():
        lines.append(f"{name} changed: " + "; ".join(changes))
    for n in c.notes:
        lines.append(f"note: {n}")
    if c.only_a:
        lines.append("only in A (not compared): " + ", ".join(c.only_a))
    if c.only_b:
        lines.append("only in B (not compared): " + ", ".join(c.only_b))
    headers = ["separator", "target", "metric", "median A", "median B", "Δ median", "95% CI", "p",
               "p Holm", "n", "verdict"]
    rows = [[r["separator"], r["target"], r["metric_label"], *paired_cells(r), r["verdict"]]
            for r in c.table]
    lines += ["", text_table(headers, rows, indent=""), "",
              "Δ median: median over tracks of B - A (> 0: B better); CI: bootstrap 95 % of that "
              "median; p: two-sided Wilcoxon signed-rank; p Holm: corrected over this table; "
              "verdict: CI on one side of 0 and p < 0.05."]
    return "\n".join(lines)


def render_html(c: Comparison, title: str | None = None) -> str:
    from . import charts, html

    metrics = list(dict.fromkeys(r["metric_label"] for r in c.table))
    order = list(dict.fromkeys(d["row"] for d in c.diffs))
    data = {"table": c.table, "tables": {"diffs": c.diffs},
            "charts": {f"diff/{m}": {"spec": charts.paired_strip(m, order)} for m in metrics},
            "metrics": metrics, "targets": [], "frames": {"tracks": {}, "hop": 1.0}}
    return html.render("compare.html.j2", data=data, cmp=c, metrics=metrics,
                       title=title or f"demixbench compare {c.a.run_id} → {c.b.run_id}")
